"""`trtcompile bench` offline and against a server writes its JSON and PNG."""

from __future__ import annotations

import json

from click.testing import CliRunner

from trtcompile.cli import main


def _check(result, tmp_path, n):
    assert result.exit_code == 0, result.output
    assert "output throughput (tok/s)" in result.output and "TTFT p50" in result.output
    summary = json.loads((tmp_path / "b.json").read_text())["summary"]
    assert summary["completed"] == summary["num_requests"] == n and summary["failed"] == 0
    assert summary["output_tokens"] > 0 and summary["output_throughput_tok_s"] > 0
    assert summary["ttft_s"]["p50"] is not None and summary["tpot_s"]["p99"] is not None
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return summary


def test_bench_offline(chat_artifact, tmp_path):
    result = CliRunner().invoke(main, [
        "bench", str(chat_artifact), "--num-requests", "6", "--scale", "0.1", "--device", "cpu",
        "--output-json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "b.png")])
    summary = _check(result, tmp_path, 6)
    assert summary["mode"] == "offline" and summary["workload"] == "w1x0.1"


def test_bench_against_server(chat_artifact, server_url, tmp_path):
    result = CliRunner().invoke(main, [
        "bench", str(chat_artifact), "--url", server_url, "--num-requests", "5", "--scale",
        "0.05", "--request-rate", "50", "--output-json", str(tmp_path / "b.json"),
        "--plot", str(tmp_path / "b.png")])
    summary = _check(result, tmp_path, 5)
    assert summary["mode"] == server_url and summary["request_rate"] == 50.0


def test_bench_bad_rate_is_a_user_error(chat_artifact):
    result = CliRunner().invoke(main, ["bench", str(chat_artifact), "--request-rate", "fast"])
    assert result.exit_code == 2 and "error: --request-rate" in result.output


def test_bench_unreachable_server_is_a_user_error(chat_artifact):
    # port 1 on this machine: nothing listens there (connection refused)
    result = CliRunner().invoke(main, ["bench", str(chat_artifact), "--url", "http://127.0.0.1:1",
                                       "--num-requests", "2"])
    assert result.exit_code == 2, result.output
    assert "error: --url http://127.0.0.1:1: cannot reach the server" in result.output


def test_bench_url_that_is_not_a_server_is_a_user_error(chat_artifact, server_url):
    # a server that answers, but not with a model list at this path
    result = CliRunner().invoke(main, ["bench", str(chat_artifact), "--url", f"{server_url}/nowhere",
                                       "--num-requests", "2"])
    assert result.exit_code == 2, result.output
    assert "without a model list" in result.output


def test_bench_output_json_that_cannot_be_written_fails_before_running(chat_artifact, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["bench", str(chat_artifact), "--num-requests", "2",
                                       "--device", "cpu", "--output-json", str(blocker / "b.json")])
    assert result.exit_code == 2, result.output
    assert f"error: --output-json {blocker / 'b.json'}: cannot write in {blocker}" in result.output
    assert "output throughput" not in result.output      # nothing was run
