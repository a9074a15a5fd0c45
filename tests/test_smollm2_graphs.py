"""The real SmolLM2-135M: exported graph == HF logits, and every pass preserves them on a
packed batch (chunked prefill + decode over an earlier call's cache, shuffled blocks)."""

import onnx
import torch

from paged_harness import compare_paged
from trtcompile.executor import OnnxExecutor
from trtcompile.passes import PASSES


def test_exported_graph_matches_hf(smollm2_artifact, smollm2_hf):
    ex = OnnxExecutor(smollm2_artifact.parent / "passes" / "00_exported.onnx")
    gen = torch.Generator().manual_seed(0)
    for t in (3, 17, 64):
        ids = torch.randint(0, smollm2_hf.info.vocab_size, (1, t), generator=gen)
        out = ex.run({"input_ids": ids, "position_ids": torch.arange(t)[None]})["logits"]
        with torch.no_grad():
            ref = smollm2_hf.model(input_ids=ids).logits
        rel = (out - ref).abs().max().item() / (ref.max() - ref.min()).item()
        assert rel <= 1e-4, f"T={t}: relative error {rel:.2e}"


def test_every_pass_preserves_logits(smollm2_artifact, smollm2_hf):
    gen = torch.Generator().manual_seed(1)
    seqs = [torch.randint(0, smollm2_hf.info.vocab_size, (n,), generator=gen).tolist()
            for n in (6, 40, 21)]
    splits = [5, 17, 21]               # step 2: one decode token, a 23-token chunk, nothing
    for i, name in enumerate(PASSES, start=1):
        model = onnx.load(str(smollm2_artifact.parent / "passes" / f"{i:02d}_{name}.onnx"))
        ex = OnnxExecutor(model)
        err = compare_paged(lambda f: ex.run(f)["logits"], smollm2_hf.model, smollm2_hf.info,
                            seqs, splits, block_size=16, num_blocks=16)
        assert err <= 1e-4, f"after {name}: relative error {err:.2e}"
