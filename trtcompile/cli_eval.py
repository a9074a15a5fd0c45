"""`trtcompile eval ARTIFACT --perplexity FILE`: quality of an artifact on a text."""

from __future__ import annotations

import json
from pathlib import Path

import click

from trtcompile.cli_common import Reporter, user_errors


@click.command("eval")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--perplexity", "text_file", required=True, metavar="FILE",
              help="text file (or ARCHIVE.zip::member) to compute perplexity on")
@click.option("--max-tokens", type=int, default=None, help="use the first N tokens only")
@click.option("--window", type=int, default=1024, show_default=True, help="tokens of context")
@click.option("--stride", type=int, default=1024, show_default=True, help="step between windows")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available)")
@click.option("--runtime", is_flag=True, help="go through the serving runtime (ModelRunner), each "
              "position its own 1-token sequence: same numbers, much slower")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("-q", "--quiet", is_flag=True, help="no progress lines")
@user_errors
def eval_cmd(artifact, text_file, max_tokens, window, stride, device, runtime, as_json, quiet) -> None:
    """Perplexity of ARTIFACT on a text, through its runtime."""
    from dataclasses import asdict

    from trtcompile.perplexity import check_options, perplexity, read_text

    check_options(window, stride, max_tokens)  # before the text is read or the artifact loaded
    r = perplexity(artifact, read_text(text_file), max_tokens=max_tokens, window=window,
                   stride=stride, device=device, runtime=runtime, log=Reporter(quiet))
    if as_json:
        click.echo(json.dumps(asdict(r)))
    else:
        click.echo(f"perplexity {r.perplexity:.3f} over {r.scored} predicted tokens "
                   f"({r.tokens} tokens, {r.windows} windows of {window}, stride {stride}) "
                   f"in {r.seconds:.1f} s")
