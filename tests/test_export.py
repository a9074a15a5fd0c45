"""Exported graph (run by the torch executor) == HF logits, every family, several lengths."""

import onnx
import pytest
import torch

from trtcompile.models.families import SUPPORTED as FAMILIES
from trtcompile.executor import OnnxExecutor


@pytest.mark.parametrize("family", FAMILIES)
def test_exported_graph_matches_hf(exported, family):
    loaded, path = exported(family)
    ex = OnnxExecutor(path)
    gen = torch.Generator().manual_seed(0)
    for t in (2, 7, 33):
        ids = torch.randint(0, loaded.info.vocab_size, (1, t), generator=gen)
        out = ex.run({"input_ids": ids, "position_ids": torch.arange(t)[None]})["logits"]
        with torch.no_grad():
            ref = loaded.model(input_ids=ids).logits
        rel = (out - ref).abs().max().item() / (ref.max() - ref.min()).item()
        assert rel <= 1e-4, f"{family} T={t}: relative error {rel:.2e}"


@pytest.mark.parametrize("family", FAMILIES)
def test_attention_is_one_explicit_node_per_layer(exported, family):
    loaded, path = exported(family)
    nodes = onnx.load(str(path), load_external_data=False).graph.node
    attn = [n for n in nodes if n.op_type == "CausalAttention" and n.domain == "trtcompile"]
    assert len(attn) == loaded.info.num_layers
    layer_ids = sorted(onnx.helper.get_attribute_value(a) for n in attn for a in n.attribute
                       if a.name == "layer_idx")
    assert layer_ids == list(range(loaded.info.num_layers))
    # typed outputs: an untyped value makes the serializer warn once per layer and drop its shape
    info = {v.name: v.type.tensor_type for v in onnx.load(str(path), load_external_data=False)
            .graph.value_info}
    for n in attn:
        assert info[n.output[0]].elem_type == onnx.TensorProto.FLOAT, n.output[0]
        assert len(info[n.output[0]].shape.dim) == 4


def test_mistral_window_is_on_the_node(exported):
    loaded, path = exported("mistral")
    nodes = onnx.load(str(path), load_external_data=False).graph.node
    windows = {onnx.helper.get_attribute_value(a) for n in nodes if n.op_type == "CausalAttention"
               for a in n.attribute if a.name == "sliding_window"}
    assert windows == {loaded.info.sliding_window} and loaded.info.sliding_window == 16


def test_executor_names_an_unsupported_op():
    from trtcompile.errors import UnsupportedOpError

    node = onnx.helper.make_node("Hardmax", ["x"], ["y"], name="hm")
    graph = onnx.helper.make_graph([node], "g",
                                   [onnx.helper.make_tensor_value_info("x", 1, [2])],
                                   [onnx.helper.make_tensor_value_info("y", 1, [2])])
    with pytest.raises(UnsupportedOpError, match="Hardmax"):
        OnnxExecutor(onnx.helper.make_model(graph))
