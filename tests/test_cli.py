"""The CLI: fast help, user errors as one line with exit code 2, build → inspect → run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]


def cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "trtcompile", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


def write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def assert_user_error(res, *needles):
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()       # progress lines may come before it
    err = lines[-1]
    assert err.startswith("error:") and sum(x.startswith("error:") for x in lines) == 1, lines
    for n in needles:
        assert n in err, err


def test_help_does_not_import_torch():
    code = ("import sys; from trtcompile.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert res.returncode == 0, res.stderr
    assert "build" in res.stdout and "inspect" in res.stdout


def test_cli_module_runs_as_a_script_too():
    # the commands' shared helpers live apart from cli.py, so running it as __main__ does not
    # import it a second time half-initialized through cli_serve / cli_eval
    res = subprocess.run([sys.executable, "-m", "trtcompile.cli", "--help"], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert res.returncode == 0, res.stderr
    assert "serve" in res.stdout and "eval" in res.stdout


def test_unknown_key_names_it_and_suggests(tmp_path):
    res = cli("validate", str(write(tmp_path, "model:\n  source: tiny-llama\nlimits:\n  max_num_seq: 4\n")))
    assert_user_error(res, "limits.max_num_seq", "did you mean 'max_num_seqs'")


def test_wrong_type(tmp_path):
    res = cli("validate", str(write(tmp_path, "model:\n  source: tiny-llama\nlimits:\n  max_num_seqs: many\n")))
    assert_user_error(res, "limits.max_num_seqs", "expected int", "'many'")


def test_missing_config_file(tmp_path):
    assert_user_error(cli("validate", str(tmp_path / "nope.yaml")), "config file not found")


def test_missing_model_file(tmp_path):
    res = cli("validate", str(write(tmp_path, f"model:\n  source: {tmp_path}/missing.gguf\n")))
    assert_user_error(res, "model source not found")


def test_unsupported_architecture(tmp_path):
    hf = tmp_path / "bert"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "bert"}))
    res = cli("validate", str(write(tmp_path, f"model:\n  source: {hf}\n")))
    assert_user_error(res, "unsupported architecture 'bert'", "supported: llama")


def test_unknown_backend(tmp_path):
    res = cli("validate", str(write(tmp_path, "model:\n  source: tiny-llama\nbuild:\n  backend: tensorrtx\n")))
    assert_user_error(res, "build.backend", "did you mean 'tensorrt'", "torch, tensorrt")


@pytest.mark.skipif(__import__("importlib").util.find_spec("tensorrt") is not None
                    and __import__("importlib").util.find_spec("tensorrt").origin is not None,
                    reason="TensorRT is installed here")
def test_tensorrt_missing_fails_before_any_work(tmp_path):
    out = tmp_path / "out"
    cfg = write(tmp_path, f"model:\n  source: tiny-llama\nbuild:\n  backend: tensorrt\n  output_dir: {out}\n")
    res = cli("build", str(cfg))
    assert_user_error(res, "TensorRT is not installed", "pip install")
    assert not out.exists() and list(tmp_path.iterdir()) == [cfg]


def test_failed_build_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    # max_model_len beyond the tiny model's 1024 positions fails after loading
    cfg = write(tmp_path, f"model:\n  source: tiny-llama\nbuild:\n  output_dir: {out}\n"
                          "limits:\n  max_model_len: 4096\n")
    res = cli("build", str(cfg))
    assert_user_error(res, "max_model_len 4096", "1024")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


@pytest.mark.parametrize("option,value,needle", [("--max-tokens", "0", "max_tokens must be a positive"),
                                                 ("--temperature", "-1", "temperature must be >= 0"),
                                                 ("--top-p", "0", "top_p must be in (0, 1]")])
def test_run_refuses_bad_sampling_options_before_loading(tmp_path, option, value, needle):
    # the artifact path does not exist: the option's error comes first, with nothing loaded
    res = cli("run", str(tmp_path / "no-artifact"), "-p", "hi", option, value)
    assert_user_error(res, needle)
    assert "loaded" not in res.stderr


@pytest.mark.parametrize("device,needle", [("tpu", "unknown device 'tpu'"), ("mps", "not supported")])
def test_run_refuses_unknown_device_before_loading(tmp_path, device, needle):
    res = cli("run", str(tmp_path / "no-artifact"), "-p", "hi", "--device", device)
    assert_user_error(res, needle, "choose cpu, cuda or cuda:N")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA GPU is visible here")
def test_run_on_cuda_without_a_gpu_says_so(tmp_path):
    res = cli("run", str(tmp_path / "no-artifact"), "-p", "hi", "--device", "cuda")
    assert_user_error(res, "no CUDA GPU is visible", "--device cpu")


def test_serve_port_out_of_range_is_a_usage_error(tmp_path):
    res = cli("serve", str(tmp_path / "no-artifact"), "--port", "99999")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "Invalid value for '--port'" in res.stderr


@pytest.mark.parametrize("options,needle", [(("--window", "1"), "need window >= 2"),
                                            (("--stride", "2048"), "1 <= stride <= window"),
                                            (("--max-tokens", "0"), "max_tokens must be >= 2")])
def test_eval_refuses_bad_options_before_reading(tmp_path, options, needle):
    # neither the artifact nor the text exists: the option's error comes first
    res = cli("eval", str(tmp_path / "no-artifact"), "--perplexity", str(tmp_path / "no.txt"), *options)
    assert_user_error(res, needle)


def test_build_to_an_unwritable_place_fails_before_loading(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    res = cli("build", str(REPO / "configs/tiny-llama.yaml"), "-o", str(blocker / "art"))
    assert_user_error(res, f"cannot write an artifact at {blocker / 'art'}", "another output directory")
    assert "[load]" not in res.stdout + res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def _blocker(tmp_path):
    """A regular file where a command would need a directory."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return blocker


def test_export_under_a_regular_file_fails_before_loading(tmp_path):
    out = _blocker(tmp_path) / "x.onnx"
    res = cli("export", str(REPO / "configs/tiny-llama.yaml"), "-o", str(out))
    assert_user_error(res, f"--output {out}: cannot write in {out.parent}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_dump_passes_under_a_regular_file_fails_before_loading(tmp_path):
    dumps = _blocker(tmp_path) / "dumps"
    res = cli("build", str(REPO / "configs/tiny-llama.yaml"), "-o", str(tmp_path / "art"),
              "--dump-passes", str(dumps))
    assert_user_error(res, f"--dump-passes {dumps}: cannot write in {dumps}")
    assert "[load]" not in res.stdout + res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_build_inspect_run_tiny(tmp_path):
    out = tmp_path / "art"
    res = cli("build", str(REPO / "configs/tiny-llama.yaml"), "-o", str(out), "-q")
    assert res.returncode == 0, res.stderr
    assert (out / "manifest.json").is_file() and (out / "model.onnx").is_file()
    res = cli("inspect", str(out))
    assert res.returncode == 0, res.stderr
    assert "PagedAttention 2" in res.stdout and "tiny-llama [llama]" in res.stdout
    res = cli("run", str(out), "-p", "1 2 3", "--max-tokens", "5")
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.strip().splitlines()[-1].split()) == 5
    # start-up progress on stderr: the artifact loaded, the KV cache's size
    assert f"loaded {out} (torch backend, cpu, checksums verified) in " in res.stderr
    assert "KV cache: " in res.stderr and " blocks of 16 tokens (" in res.stderr

    # a corrupted artifact is refused with the reason
    with open(out / "model.onnx", "ab") as f:
        f.write(b"x")
    assert_user_error(cli("inspect", str(out)), "checksum mismatch for model.onnx")
    assert_user_error(cli("inspect", str(tmp_path)), "not an artifact")
