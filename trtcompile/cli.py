"""The `trtcompile` command line: parse, load config, call one library function."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from trtcompile.cli_common import Reporter, user_errors, writable_dir, writable_file
from trtcompile.cli_eval import eval_cmd
from trtcompile.cli_serve import bench, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trtcompile")
def main() -> None:
    """trtcompile: compile a Hugging Face causal LM ahead of time and serve it."""


config_arg = click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
set_opt = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                       help="override a config key, e.g. --set limits.max_num_seqs=8")


@main.command()
@config_arg
@set_opt
@user_errors
def validate(config: Path, overrides: tuple[str, ...]) -> None:
    """Check CONFIG (keys, types, model source, backend) without building."""
    from trtcompile.config import load_config
    from trtcompile.models.loading import peek_model_type
    from trtcompile.build import check_supported

    cfg = load_config(config, overrides)
    family = peek_model_type(cfg.model.source)
    check_supported(cfg)
    click.echo(f"{config}: valid (model {cfg.model.source} [{family}], backend {cfg.build.backend},"
               f" dtype {cfg.model.dtype}, output {cfg.build.output_dir})")


@main.command()
@config_arg
@set_opt
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="artifact directory (overrides build.output_dir)")
@click.option("--dump-passes", type=click.Path(file_okay=False, path_type=Path),
              help="write the graph after each pass into this directory")
@click.option("-q", "--quiet", is_flag=True, help="print errors and the final line only")
@click.option("-v", "--verbose", is_flag=True, help="print more detail")
@user_errors
def build(config: Path, overrides, output, dump_passes, quiet, verbose) -> None:
    """Build an artifact from CONFIG."""
    from trtcompile.build import build as run_build
    from trtcompile.config import load_config

    if output is not None:
        overrides = (*overrides, f"build.output_dir={output}")
    cfg = load_config(config, overrides)
    if dump_passes is not None:
        writable_dir(dump_passes, "--dump-passes")
    report = Reporter(quiet, verbose)
    result = run_build(cfg, dump_passes=dump_passes, log=report)
    total = time.perf_counter() - report.start
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.stage_seconds.items())
    click.echo(f"built {result.output_dir} ({result.bytes / 2**20:.1f} MiB) in {total:.1f} s "
               f"[{stages}]")
    if not quiet:
        click.echo(f"run it:   trtcompile run {result.output_dir} --prompt 'Hello'")
        click.echo(f"inspect:  trtcompile inspect {result.output_dir}")


@main.command()
@config_arg
@set_opt
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="ONNX file to write")
@user_errors
def export(config: Path, overrides, output: Path) -> None:
    """Export the model of CONFIG to ONNX (before any pass)."""
    from trtcompile.config import load_config
    from trtcompile.export.onnx_export import export_onnx
    from trtcompile.models.loading import load_model

    cfg = load_config(config, overrides)
    writable_file(output, "--output")
    loaded = load_model(cfg.model.source, "float32", cfg.model.seed)
    export_onnx(loaded.model, output, max_tokens=cfg.build.export_max_tokens,
                log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {output}")


@main.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print the raw manifest")
@click.option("--no-verify", is_flag=True, help="skip checksum verification")
@user_errors
def inspect(artifact: Path, as_json: bool, no_verify: bool) -> None:
    """Show the manifest of ARTIFACT."""
    from trtcompile.artifact import load_artifact
    from trtcompile.inspect_view import render

    art = load_artifact(artifact, verify=not no_verify)
    click.echo(json.dumps(art.manifest, indent=2) if as_json else render(art))


@main.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("-p", "--prompt", "prompts", multiple=True, required=True,
              help="prompt text (repeat for several prompts, generated together)")
@click.option("--max-tokens", default=64, show_default=True, help="tokens to generate")
@click.option("--temperature", default=0.0, show_default=True, help="0 = greedy")
@click.option("--top-p", default=1.0, show_default=True)
@click.option("--top-k", default=0, show_default=True, help="0 = off")
@click.option("--seed", type=int, default=None, help="per-request sampling seed")
@click.option("--chat", is_flag=True, help="wrap each prompt in the tokenizer's chat template")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available)")
@user_errors
def run(artifact: Path, prompts, max_tokens, temperature, top_p, top_k, seed, chat, device):
    """Generate text for PROMPT(s) with ARTIFACT."""
    from trtcompile.llm import LLM
    from trtcompile.runtime.sampling_params import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                            top_k=top_k, seed=seed)
    params.validate()  # before the artifact loads: a bad option costs no start-up
    llm = LLM(artifact, device=device, log=Reporter())
    shown = list(prompts)
    if chat:
        if llm.tokenizer is None or not llm.tokenizer.chat_template:
            raise click.UsageError("--chat needs an artifact whose tokenizer has a chat template")
        prompts = [llm.tokenizer.apply_chat_template([{"role": "user", "content": p}],
                                                     tokenize=False, add_generation_prompt=True)
                   for p in prompts]
    start = time.perf_counter()
    outs = llm.generate(list(prompts), params)
    elapsed = time.perf_counter() - start
    for prompt, out in zip(shown, outs):
        text = out.text if out.text is not None else " ".join(map(str, out.token_ids))
        click.echo(f"--- {prompt!r}\n{text}")
    n = sum(len(o.token_ids) for o in outs)
    click.echo(f"[{n} tokens in {elapsed:.2f} s, {n / elapsed:.1f} tokens/s on {llm.device}]",
               err=True)


@main.command("config")
@click.option("--markdown", is_flag=True, help="print a Markdown table (the README's)")
def config_reference(markdown: bool) -> None:
    """List every config key with its default."""
    from trtcompile.config import markdown_table, describe

    if markdown:
        click.echo(markdown_table())
        return
    for key, default, doc in describe():
        click.echo(f"{key:32} {default:28} {doc}")


main.add_command(serve)
main.add_command(bench)
main.add_command(eval_cmd)

if __name__ == "__main__":
    main()
