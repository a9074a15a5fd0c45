"""The C++ adapters declare exactly the plugins of trtcompile/ops/spec.py: names, version,
namespace, PluginField names/types and I/O indices (op_fields.h is generated from the spec;
the adapters may only use that table)."""

import importlib.util
import re
from pathlib import Path

from trtcompile.ops import spec

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
HEADER = PLUGINS / "common" / "op_fields.h"
# plugin -> adapter stem under plugins/: <stem>_plugin.{h,cpp}
ADAPTERS = {"PagedAttention": "paged_attention/paged_attention", "RMSNorm": "rmsnorm/rmsnorm",
            "SiluMul": "silu_mul/silu_mul", "WeightOnlyGemm": "quant/weight_only_gemm"}
KIND = {"kInt": "int", "kFloat": "float", "kString": "string"}


def _generator():
    s = importlib.util.spec_from_file_location("gen_op_fields", PLUGINS / "common" / "gen_op_fields.py")
    mod = importlib.util.module_from_spec(s)
    s.loader.exec_module(mod)
    return mod


def _parse_header(text: str) -> dict:
    ops = {}
    ops_part = text.split("namespace op {", 1)[1]
    for m in re.finditer(r"^struct (\w+) \{\n(.*?)^\};", ops_part, re.S | re.M):
        body = m.group(2)
        consts = dict(re.findall(r'static constexpr char const\* k(\w+) = "([^"]*)";', body))
        fields = [(n, KIND[k], float(d)) for n, k, d in
                  re.findall(r'\{"(\w+)", FieldKind::(\w+), ([-+.\deE]+)\}', body)]
        enums = {name: dict((k, int(v)) for k, v in re.findall(r"(k\w+) = (\d+)", items))
                 for name, items in re.findall(r"enum (\w+) : int32_t \{([^}]*)\}", body)}
        ops[m.group(1)] = {"consts": consts, "fields": fields, "enums": enums}
    return ops


def test_generated_header_is_up_to_date():
    assert HEADER.read_text() == _generator().render(), \
        "plugins/common/op_fields.h is stale: run python plugins/common/gen_op_fields.py"


def test_header_matches_spec():
    ops = _parse_header(HEADER.read_text())
    assert set(ops) == set(spec.PLUGIN_OPS)
    for name, op in spec.PLUGIN_OPS.items():
        got = ops[name]
        defaults = op.attr_defaults()
        assert got["consts"] == {"Name": name, "Version": defaults["plugin_version"],
                                 "Namespace": defaults["plugin_namespace"]}
        assert got["consts"]["Version"] == spec.PLUGIN_VERSION
        assert got["consts"]["Namespace"] == spec.PLUGIN_NAMESPACE
        want = [(a.name, a.kind, float(a.default) if a.kind != "string" else 0.0)
                for a in op.attrs if a.name not in ("plugin_version", "plugin_namespace")]
        assert got["fields"] == want
        inputs = got["enums"]["Input"]
        assert inputs.pop("kNbInputs") == len(op.inputs)
        assert sorted(inputs.values()) == list(range(len(op.inputs)))
        outputs = got["enums"]["Output"]
        assert outputs.pop("kNbOutputs") == len(op.outputs)


def test_paged_attention_alias_indices():
    enums = _parse_header(HEADER.read_text())["PagedAttention"]["enums"]
    names = [p.name for p in spec.PAGED_ATTENTION.inputs]
    assert enums["Input"]["kInKvCache"] == names.index("kv_cache") == 8
    assert enums["Output"]["kOutKvCacheOut"] == [p.name for p in spec.PAGED_ATTENTION.outputs].index(
        "kv_cache_out") == 1


def test_adapters_take_names_and_fields_from_the_table():
    """No adapter spells a plugin name, version, namespace or field name itself."""
    assert set(ADAPTERS) == set(spec.PLUGIN_OPS), "a plugin op has no adapter listed here"
    registry = (PLUGINS / "common" / "plugin_registry.cpp").read_text()
    for name, stem in ADAPTERS.items():
        header = (PLUGINS / f"{stem}_plugin.h").read_text()
        source = (PLUGINS / f"{stem}_plugin.cpp").read_text()
        assert f"using Op = op::{name};" in header
        assert f"PluginBase<{name}Plugin, op::{name}" in header
        assert f"PluginCreator<{name}Plugin>" in registry
        for text in (header, source):
            assert f'"{name}"' not in text
            for attr in spec.PLUGIN_OPS[name].attrs:
                assert f'"{attr.name}"' not in text, f"{stem}: field '{attr.name}' spelled by hand"


def test_every_adapter_is_built_and_compile_checked():
    cmake = (PLUGINS / "CMakeLists.txt").read_text()
    check = (PLUGINS / "check_adapters.sh").read_text()
    for stem in ADAPTERS.values():
        assert f"{stem}_plugin.cpp" in cmake
        assert f"{stem}_plugin.cpp" in check
