"""The in-memory export (weights as views of the torch tensors) and the direct external-data
writer: same graph and weights as the file export, saved files the executor reads back."""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
import torch

from trtcompile.executor import OnnxExecutor
from trtcompile.passes import graph_io


def _weights(graph: gs.Graph) -> dict[str, np.ndarray]:
    return {t.name: np.asarray(t.values) for t in graph.tensors().values()
            if isinstance(t, gs.Constant)}


@pytest.fixture(scope="module")
def llama(exported):
    from trtcompile.export.onnx_export import export_graph

    loaded, path = exported("llama")
    return loaded, path, export_graph(loaded.model, max_tokens=512, log=lambda m: None)


def test_export_graph_equals_the_file_export(llama):
    _loaded, path, graph = llama
    from_file = gs.import_onnx(onnx.load(str(path)))
    assert [n.op for n in graph.nodes] == [n.op for n in from_file.nodes]
    ours, theirs = _weights(graph), _weights(from_file)
    assert ours.keys() == theirs.keys()
    for name, values in theirs.items():
        np.testing.assert_array_equal(ours[name], values, err_msg=name)


def test_weights_are_views_of_the_model(llama):
    loaded, _path, graph = llama
    embed = loaded.model.get_input_embeddings().weight
    views = [t for t in graph.tensors().values() if isinstance(t, gs.Constant)
             and t.values.shape == tuple(embed.shape)]
    assert views and any(np.shares_memory(t.values, embed.detach().numpy()) for t in views)


@pytest.mark.parametrize("external", [False, True])
def test_saved_graph_runs_like_the_export(llama, tmp_path, monkeypatch, external):
    loaded, path, graph = llama
    if external:
        monkeypatch.setattr(graph_io, "EXTERNAL_ABOVE", 0)
    before = _weights(graph)
    out = tmp_path / "model.onnx"
    graph_io.save_graph(graph, out)
    assert (tmp_path / "model.onnx.data").exists() == external
    after = _weights(graph)                 # the graph is left as it was
    assert all(after[k] is before[k] for k in before)
    if external:
        proto = onnx.load(str(out), load_external_data=False)
        offsets = [int(e.value) for t in proto.graph.initializer for e in t.external_data
                   if e.key == "offset"]
        assert offsets and all(o % graph_io.ALIGN == 0 for o in offsets)
    ids = torch.randint(0, loaded.info.vocab_size, (1, 9), generator=torch.Generator().manual_seed(1))
    feeds = {"input_ids": ids, "position_ids": torch.arange(9)[None]}
    got = OnnxExecutor(out).run(feeds)["logits"]
    want = OnnxExecutor(path).run(feeds)["logits"]
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_truncated_data_file_is_refused_with_the_tensor_name(llama, tmp_path, monkeypatch):
    from trtcompile.errors import ArtifactError

    _loaded, _path, graph = llama
    monkeypatch.setattr(graph_io, "EXTERNAL_ABOVE", 0)
    out = tmp_path / "model.onnx"
    graph_io.save_graph(graph, out)
    data = tmp_path / "model.onnx.data"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(ArtifactError, match="tensor '.*' needs"):
        OnnxExecutor(out)


def test_executor_takes_the_graphs_weights_without_a_copy(llama, exported):
    loaded, path, graph = llama
    model, weights = graph_io.to_model_sharing_weights(graph)
    refs = [t for t in model.graph.initializer
            if t.data_location == onnx.TensorProto.EXTERNAL]
    assert refs and {t.name for t in refs} == set(weights)
    assert all(e.value == graph_io.MEMORY_LOCATION for t in refs for e in t.external_data
               if e.key == "location")
    assert all(t.values is weights[t.name] for t in graph.tensors().values()
               if isinstance(t, gs.Constant) and t.name in weights)     # graph restored
    ex = OnnxExecutor(model, weights=weights)
    name = max(weights, key=lambda k: weights[k].nbytes)
    assert np.shares_memory(ex.constants[name].numpy(), weights[name])
    ids = torch.randint(0, loaded.info.vocab_size, (1, 9), generator=torch.Generator().manual_seed(2))
    feeds = {"input_ids": ids, "position_ids": torch.arange(9)[None]}
    torch.testing.assert_close(ex.run(feeds)["logits"], OnnxExecutor(path).run(feeds)["logits"],
                               rtol=0, atol=0)


def test_weights_split_into_data_files_of_shard_size(llama, tmp_path, monkeypatch):
    """Above SHARD_BYTES the weights go on in a further data file (each tensor whole, offsets
    aligned), the executor reads them from all files, and the artifact checksums cover each."""
    from trtcompile.artifact import load_artifact, write_manifest
    from trtcompile.errors import ArtifactError

    loaded, path, graph = llama
    monkeypatch.setattr(graph_io, "EXTERNAL_ABOVE", 0)
    monkeypatch.setattr(graph_io, "SHARD_BYTES", 1 << 16)
    out = tmp_path / "model.onnx"
    graph_io.save_graph(graph, out)
    files = sorted((p.name for p in tmp_path.glob("model.onnx.data*")), key=lambda n: (len(n), n))
    assert len(files) >= 3 and files[:2] == ["model.onnx.data", "model.onnx.data.1"]
    biggest = max(c.values.nbytes for c in graph_io._weight_constants(graph))
    assert all((tmp_path / f).stat().st_size <= max(graph_io.SHARD_BYTES, biggest) for f in files)
    proto = onnx.load(str(out), load_external_data=False)
    ext = [{e.key: e.value for e in t.external_data} for t in proto.graph.initializer if t.external_data]
    assert {e["location"] for e in ext} == set(files)
    assert all(int(e["offset"]) % graph_io.ALIGN == 0 for e in ext)
    ids = torch.randint(0, loaded.info.vocab_size, (1, 7), generator=torch.Generator().manual_seed(2))
    feeds = {"input_ids": ids, "position_ids": torch.arange(7)[None]}
    torch.testing.assert_close(OnnxExecutor(out).run(feeds)["logits"],
                               OnnxExecutor(path).run(feeds)["logits"], rtol=0, atol=0)
    manifest = write_manifest(tmp_path, {})
    assert set(files) <= set(manifest["files"])
    from trtcompile.inspect_view import _files                # `inspect`: the weights as one entry
    assert [e for e in _files(manifest["files"]) if "data" in e] == [
        f"model.onnx.data, .data.1 .. .data.{len(files) - 1} "
        f"({sum((tmp_path / f).stat().st_size for f in files) / 2**20:.1f} MiB in {len(files)} files)"]
    load_artifact(tmp_path)                                   # every file's checksum verified
    last = tmp_path / files[-1]
    data = bytearray(last.read_bytes())
    data[0] ^= 1                                              # same size, other bytes
    last.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"checksum mismatch for {files[-1]}"):
        load_artifact(tmp_path)
