"""ctypes bindings of the CUDA kernel library (build/libtrtcompile_kernels.so) and the CUDA
implementations of the trtcompile torch.library ops."""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

import torch

from trtcompile.errors import BackendUnavailableError, UnsupportedOpError
from trtcompile.ops import quant_kernels, quant_reference

ENV_VAR = "TRTCOMPILE_KERNELS_LIB"
ABI_VERSION = 2   # TRTC_ABI_VERSION of plugins/common/trtc_launch.h that these bindings match
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "build" / "libtrtcompile_kernels.so"

_CUDA_ERROR_INVALID_VALUE = 1
_CUDA_ERROR_NOT_SUPPORTED = 801
_DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2, torch.float8_e4m3fn: 3,
           torch.int8: 4}
_QUANTIZED_POOLS = (torch.float8_e4m3fn, torch.int8)
# int4 decode batches of 17-32 tokens on projections wider than deep (N > K: fused gate/up and
# q/k/v) run the tensor-core GEMV. H100, int4 g128, 17-32 tokens: llama-3.1-8b gate_up 4096 x
# 28672 47-52 us against 95-118 for the CUDA-core GEMV (bf16 93-95), q/k/v 4096 x 6144 19.6 against
# 25.5-29.9; llama-3.2-1b gate_up 21 against 37-42, q/k/v 12.6 against 13.0-14.3. On o (N = K) and
# down (N < K) the CUDA-core GEMV was as fast or faster, and at <= 16 tokens everywhere
# (docs/benchmarks.md, session 11).
_MMA_GEMV_ROWS = (17, 32)
_GEMV_MAX_M = 32          # weight_only_gemm: larger M is prefill, run by a tiled kernel
FP8_GEMM_MAX_ROWS = 64    # fp8_gemm: larger batches run torch._scaled_mm (faster there)
_FP8_GEMM_KERNEL_ROWS = 256   # the most rows the kernel takes (its widest token tile)


class PagedAttentionParams(ctypes.Structure):
    """Mirror of trtc_paged_attention_params (plugins/common/trtc_launch.h)."""

    _fields_ = [(name, ctypes.c_int32) for name in (
        "num_tokens", "num_seqs", "num_heads", "num_kv_heads", "head_dim", "block_size",
        "max_blocks_per_seq", "num_blocks", "q_stride", "k_stride", "v_stride", "rotary_dim",
        "sliding_window")] + [("scale", ctypes.c_float), ("rotary_scaling", ctypes.c_float),
                              ("dtype", ctypes.c_int), ("kv_dtype", ctypes.c_int),
                              ("split_counters", ctypes.c_void_p)]


def library_path() -> Path:
    """The kernel library: $TRTCOMPILE_KERNELS_LIB, else <repo>/build/libtrtcompile_kernels.so."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_PATH


def _i32(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype == torch.int32 and t.is_contiguous() else t.to(torch.int32).contiguous()


def _rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """[rows, C] view with unit column stride (copies only when it must)."""
    flat = t.reshape(rows, -1)
    return flat if flat.stride(-1) == 1 else flat.contiguous()


def _device_answer(answers: dict[int, bool], device: torch.device, probe) -> bool:
    """probe() (a library query about the current device) for `device`, asked once per device."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    ok = answers.get(index)
    if ok is None:
        with torch.cuda.device(index):
            ok = answers[index] = bool(probe())
    return ok


def _optional(lib: ctypes.CDLL, name: str, argtypes: list):
    """The launcher `name` of the library, or None when this build does not have it."""
    fn = getattr(lib, name, None)
    if fn is not None:
        fn.argtypes, fn.restype = argtypes, ctypes.c_int
    return fn


def _check_abi(lib: ctypes.CDLL, path: Path) -> None:
    """Refuses a library built from other sources than these bindings (its launchers could read
    the arguments passed here differently)."""
    version = getattr(lib, "trtc_abi_version", None)
    if version is not None:
        version.restype = ctypes.c_int
        version = version()
    if version != ABI_VERSION:
        built = "an older trtcompile" if version is None else f"interface version {version}"
        raise BackendUnavailableError(
            f"the CUDA kernel library {path} was built from {built}, and this trtcompile needs "
            f"interface version {ABI_VERSION}: rebuild it with `make kernels` (or point "
            f"{ENV_VAR} at a current build).")


class KernelLibrary:
    """The loaded .so: one cached ctypes function per launcher, one reused params struct, and
    per device one workspace and one buffer of paged attention's split counters (zero between
    calls; the kernels leave them zero). Both grow on demand: size them with a warm-up call
    before capturing a CUDA graph. A buffer that grows is kept alive, since graphs captured
    before hold its address."""

    def __init__(self, path: Path):
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as e:
            raise BackendUnavailableError(
                f"cannot load the CUDA kernel library {path}: {e}. Build it with `make kernels` "
                f"or point {ENV_VAR} at it.") from e
        _check_abi(lib, path)
        p, i32, i64, f32 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_float
        self._rms = lib.trtc_rmsnorm
        self._rms.argtypes = [p, p, p, p, p, i64, i32, f32, ctypes.c_int, p]
        self._rms.restype = ctypes.c_int
        self._silu = lib.trtc_silu_mul
        self._silu.argtypes = [p, p, i64, i32, ctypes.c_int, p]
        self._silu.restype = ctypes.c_int
        self._pa = lib.trtc_paged_attention
        self._pa.argtypes = [ctypes.POINTER(PagedAttentionParams)] + [p] * 13 + [ctypes.c_size_t, p]
        self._pa.restype = ctypes.c_int
        self._pa_ws = lib.trtc_paged_attention_workspace_size
        self._pa_ws.argtypes = [ctypes.POINTER(PagedAttentionParams)]
        self._pa_ws.restype = ctypes.c_size_t
        self._woq = lib.trtc_weight_only_gemm
        self._woq.argtypes = [p, i64, p, p, p, p, p, i64, i32, i32, i32, i32, ctypes.c_int, p]
        self._woq.restype = ctypes.c_int
        self._woq_packed = lib.trtc_weight_only_gemm_packed
        self._woq_packed.argtypes = [p, i64, p, p, p, p, p, i64, i32, i32, i32, i32, i32, i32,
                                     ctypes.c_int, p]
        self._woq_packed.restype = ctypes.c_int
        self._woq_packed_supported = lib.trtc_weight_only_gemm_packed_supported
        self._woq_packed_supported.restype = ctypes.c_int
        self._packed_devices: dict[int, bool] = {}
        self.repacked_weights = quant_kernels.RepackedWeightCache()
        self.use_packed_gemm = True     # False: M > 32 runs the generic tiled kernel too
        self.packed_tile_tokens = 0     # 64, 128 or 256 tokens per block; 0: the kernel's default
        self.packed_k_splits = 0        # 1, 2, 4 or 8 blocks splitting K; 0: the kernel's choice
        self._quant = lib.trtc_quantize_per_token
        self._quant.argtypes = [p, i64, p, p, i64, i32, ctypes.c_int, ctypes.c_int, p]
        self._quant.restype = ctypes.c_int
        # Optional (None in libraries built before them): the two kernels run instead.
        self._rms_quant = _optional(lib, "trtc_rmsnorm_quantize",
                                    [p, p, p, p, p, p, i64, i32, f32, ctypes.c_int, ctypes.c_int, p])
        self._silu_quant = _optional(lib, "trtc_silu_mul_quantize",
                                     [p, p, p, i64, i32, ctypes.c_int, ctypes.c_int, p])
        self._quant_f32 = _optional(lib, "trtc_quantize_per_token_f32scale",
                                    [p, i64, p, p, i64, i32, ctypes.c_int, ctypes.c_int, p])
        self._fp8_gemm = _optional(lib, "trtc_fp8_gemm", [p, i64, p, p, p, p, i64, i32, i32, p])
        self._fp8_gemm_supported = getattr(lib, "trtc_fp8_gemm_supported", None)
        self._woq_gemv_mma = _optional(lib, "trtc_weight_only_gemv_packed",
                                       [p, i64, p, p, i32, p, i64, i32, i32, i32, ctypes.c_int, p])
        self._woq_gemv_mma_supported = getattr(lib, "trtc_weight_only_gemv_packed_supported", None)
        self._woq_gemv_bulk_fits = _optional(lib, "trtc_weight_only_gemv_bulk_fits",
                                             [i64, i32, i32, i32, i32, i32])
        self._gemv_bulk_answers: dict[tuple, bool] = {}
        self._gemv_mma_devices: dict[int, bool] = {}
        self.slab_pairs = quant_kernels.SlabPairCache()
        # "auto": the tensor-core int4 GEMV at _MMA_GEMV_ROWS tokens where N > K; "always":
        # wherever it can run (tests); "never": the CUDA-core GEMV
        self.mma_gemv = "auto"
        self._fp8_devices: dict[int, bool] = {}
        self.fp8_gemm_max_rows = FP8_GEMM_MAX_ROWS   # larger batches: torch._scaled_mm
        self.group_pairs = quant_kernels.GroupPairCache()
        self.pack_group_scales = True   # False: the kernels read the float32 scales/zeros
        self._params = PagedAttentionParams()
        self._params_ref = ctypes.byref(self._params)
        self._workspace: dict[int, torch.Tensor] = {}
        self._counters: dict[int, torch.Tensor] = {}
        self._retired: list[torch.Tensor] = []  # outgrown buffers that captured graphs may use
        self.path = path

    @staticmethod
    def _check(err: int, what: str) -> None:
        if err == _CUDA_ERROR_NOT_SUPPORTED:
            raise UnsupportedOpError(f"{what}: the CUDA kernels do not support these inputs "
                                     "(dtype, head_dim 64/128)")
        if err:
            raise RuntimeError(f"{what}: CUDA error {err}")

    def _grown(self, buffers: dict[int, torch.Tensor], device: torch.device, numel: int,
               make) -> torch.Tensor:
        """buffers' tensor for `device` with at least `numel` elements; a larger one from
        make(numel) (at least twice the old size) where it is smaller, the old one retired."""
        index = device.index if device.index is not None else torch.cuda.current_device()
        buf = buffers.get(index)
        if buf is None or buf.numel() < numel:
            if buf is not None:
                self._retired.append(buf)
                numel = max(numel, 2 * buf.numel())
            buf = buffers[index] = make(numel)
        return buf

    def _workspace_for(self, device: torch.device, nbytes: int) -> torch.Tensor:
        return self._grown(self._workspace, device, max(nbytes, 1 << 20),
                           lambda n: torch.empty(n, dtype=torch.uint8, device=device))

    def _counters_for(self, device: torch.device, count: int) -> torch.Tensor:
        return self._grown(self._counters, device, max(count, 1024),
                           lambda n: torch.zeros(n, dtype=torch.int32, device=device))

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor | None,
                 epsilon: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = x.contiguous()
        weight = weight.contiguous()
        hidden = x.shape[-1]
        y = torch.empty_like(x)
        res_out = None
        if residual is not None:
            residual = residual.contiguous()
            res_out = torch.empty_like(x)
        err = self._rms(x.data_ptr(), residual.data_ptr() if residual is not None else None,
                        weight.data_ptr(), y.data_ptr(),
                        res_out.data_ptr() if res_out is not None else None,
                        x.numel() // hidden, hidden, epsilon, _DTYPES[x.dtype],
                        torch.cuda.current_stream(x.device).cuda_stream)
        self._check(err, "rms_norm")
        return y, res_out

    def silu_mul(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        inter = x.shape[-1] // 2
        y = x.new_empty(*x.shape[:-1], inter)
        err = self._silu(x.data_ptr(), y.data_ptr(), x.numel() // (2 * inter), inter,
                         _DTYPES[x.dtype], torch.cuda.current_stream(x.device).cuda_stream)
        self._check(err, "silu_mul")
        return y

    def packed_gemm_on(self, device: torch.device) -> bool:
        """Whether M > 32 runs the Hopper kernel on repacked codes on this device."""
        return self.use_packed_gemm and _device_answer(self._packed_devices, device,
                                                       self._woq_packed_supported)

    def gemv_bulk_fits(self, device: torch.device, m: int, n: int, k: int, bits: int,
                       group_size: int) -> bool:
        """Whether trtc_weight_only_gemm runs this product on its Hopper GEMV fed by tensor
        copies (plugins/quant/weight_only_gemv_bulk.cu: int8 at 17-32 tokens, int4 at 13-16, and
        at 17-32 per channel or in groups of 32, on projections of at least 64 rows a SM), given
        aligned operands."""
        if self._woq_gemv_bulk_fits is None:
            return False
        index = device.index if device.index is not None else torch.cuda.current_device()
        pairs = group_size == 0 or self.pack_group_scales
        key = (index, m, n, k, bits, group_size, pairs)
        ok = self._gemv_bulk_answers.get(key)
        if ok is None:
            with torch.cuda.device(index):
                ok = bool(self._woq_gemv_bulk_fits(m, n, k, bits, group_size, int(pairs)))
            if len(self._gemv_bulk_answers) > 4096:    # shapes are few; stay bounded anyway
                self._gemv_bulk_answers.clear()
            self._gemv_bulk_answers[key] = ok
        return ok

    def mma_gemv_fits(self, device: torch.device, m: int, n: int, k: int, bits: int,
                      group_size: int) -> bool:
        """Whether this product runs the tensor-core int4 GEMV (plugins/quant/
        weight_only_gemv_mma.cu, Hopper) on codes repacked as for the wgmma kernel: int4 with
        power-of-two groups of >= 32, K a multiple of 64, m <= 32, and under the "auto" policy
        17-32 tokens on a projection wider than deep (N > K) where the GEMV fed by tensor copies
        does not run (gemv_bulk_fits: faster on the H200). It applies the float32 group scales
        after the MMAs, so its weights are not rounded to the activation type as the other
        kernels' are."""
        if self.mma_gemv == "never" or self._woq_gemv_mma is None:
            return False
        if not (bits == 4 and 0 < m <= _MMA_GEMV_ROWS[1] and k % 64 == 0 and group_size >= 32
                and group_size & (group_size - 1) == 0):
            return False
        if self.mma_gemv == "auto" and (m < _MMA_GEMV_ROWS[0] or n <= k
                                        or self.gemv_bulk_fits(device, m, n, k, bits, group_size)):
            return False
        return _device_answer(self._gemv_mma_devices, device, self._woq_gemv_mma_supported)

    def weight_only_gemm(self, x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor,
                         zeros: torch.Tensor | None, bits: int, group_size: int) -> torch.Tensor:
        """y = x @ dequant(W) (ops/spec.py WeightOnlyGemm); fp16/bf16 x run the kernels, other
        dtypes the plain-torch reference on the GPU."""
        if x.dtype not in (torch.float16, torch.bfloat16):
            return quant_reference.weight_only_gemm(x, qweight, scales, zeros, bits, group_size)
        lead, k = x.shape[:-1], x.shape[-1]
        n = quant_kernels.check_weight_only_args(k, qweight, scales, zeros, bits, group_size)
        m = x.numel() // k
        if m == 0:
            return x.new_empty(*lead, n)
        x2 = _rows(x, m)
        if x2.stride(0) % 8 or x2.data_ptr() % 16:
            x2 = x2.contiguous()
        qweight = qweight.contiguous()
        scales = self.group_pairs.float32(scales)
        zeros = self.group_pairs.float32(zeros) if zeros is not None else None
        y = torch.empty(m, n, dtype=x.dtype, device=x.device)
        self._weight_only_rows(x2, qweight, scales, zeros, bits, group_size, y,
                               torch.cuda.current_stream(x.device).cuda_stream)
        return y.reshape(*lead, n)

    def _weight_only_rows(self, x2: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor,
                          zeros: torch.Tensor | None, bits: int, group_size: int,
                          y: torch.Tensor, stream: int) -> None:
        """y [m, n] = x2 [m, k] (rows 16-byte aligned) @ dequant(W) by the kernel for m rows."""
        m, k = x2.shape
        n = y.shape[1]
        if self.mma_gemv_fits(x2.device, m, n, k, bits, group_size):
            packed = self.repacked_weights.get(qweight, bits)
            slab_pairs = self.slab_pairs.get(scales, zeros)
            err = self._woq_gemv_mma(x2.data_ptr(), x2.stride(0), packed.data_ptr(),
                                     slab_pairs.data_ptr(), int(zeros is None), y.data_ptr(), m,
                                     n, k, group_size, _DTYPES[x2.dtype], stream)
            self._check(err, "weight_only_gemm")
            return
        pairs = None
        if group_size and self.pack_group_scales:
            pairs = self.group_pairs.get(scales, zeros, x2.dtype)
        common = (scales.data_ptr(), zeros.data_ptr() if zeros is not None else None,
                  pairs.data_ptr() if pairs is not None else None, y.data_ptr(), m, n, k, bits,
                  group_size)
        if m > _GEMV_MAX_M and self.packed_gemm_on(x2.device):
            packed = self.repacked_weights.get(qweight, bits)
            err = self._woq_packed(x2.data_ptr(), x2.stride(0), packed.data_ptr(), *common,
                                   self.packed_tile_tokens, self.packed_k_splits,
                                   _DTYPES[x2.dtype], stream)
        else:
            err = self._woq(x2.data_ptr(), x2.stride(0), qweight.data_ptr(), *common,
                            _DTYPES[x2.dtype], stream)
        self._check(err, "weight_only_gemm")

    def fp8_gemm_on(self, device: torch.device) -> bool:
        """Whether this library runs the decode fp8 GEMM on this device (sm_90a: H100, H200)."""
        if self._fp8_gemm is None or self._fp8_gemm_supported is None:
            return False
        return _device_answer(self._fp8_devices, device, self._fp8_gemm_supported)

    def fp8_gemm(self, q: torch.Tensor, sx: torch.Tensor, w: torch.Tensor,
                 w_scale: torch.Tensor) -> torch.Tensor | None:
        """bf16 (q * sx) @ (W_q * w_scale) for e4m3 codes q [M, K] (M <= fp8_gemm_max_rows),
        float32 sx [M, 1], W_q [K, N] column-major and float32 w_scale [1, N], with the tensor
        cores' own accumulation (torch._scaled_mm's use_fast_accum); None where this library or
        device cannot (the caller runs torch._scaled_mm)."""
        m, k = q.shape
        n = w.shape[1]
        if (m > min(self.fp8_gemm_max_rows, _FP8_GEMM_KERNEL_ROWS) or m == 0 or k % 16
                or q.stride(1) != 1 or q.stride(0) % 16 or q.data_ptr() % 16
                or w.stride() != (1, k) or w.data_ptr() % 16 or not self.fp8_gemm_on(q.device)):
            return None
        sx = sx.reshape(m).float().contiguous()
        w_scale = w_scale.reshape(n).float().contiguous()
        if w_scale.data_ptr() % 16:                      # a view into another tensor
            w_scale = w_scale.clone()
        y = torch.empty(m, n, dtype=torch.bfloat16, device=q.device)
        err = self._fp8_gemm(q.data_ptr(), q.stride(0), w.data_ptr(), w_scale.data_ptr(),
                             sx.data_ptr(), y.data_ptr(), m, n, k,
                             torch.cuda.current_stream(q.device).cuda_stream)
        self._check(err, "fp8_gemm")
        return y

    @staticmethod
    def _quant_dtype(what: str, x: torch.Tensor, target: str) -> torch.dtype:
        qdtype = quant_kernels.QUANT_TARGETS.get(target)
        if qdtype is None:
            raise UnsupportedOpError(f"{what}: target must be one of "
                                     f"{sorted(quant_kernels.QUANT_TARGETS)}, got {target!r}")
        if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise UnsupportedOpError(f"{what}: x must be float32, float16 or bfloat16, "
                                     f"got {x.dtype}")
        return qdtype

    def rms_norm_quantize(self, x: torch.Tensor, weight: torch.Tensor,
                          residual: torch.Tensor | None, epsilon: float, target: str
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """RMSNorm whose output is quantized per token instead of written: -> (codes, scale
        float32 [.., 1], residual_out); rows the fused kernel does not take run both kernels."""
        qdtype = self._quant_dtype("rms_norm_quantize", x, target)
        x, weight = x.contiguous(), weight.contiguous()
        hidden = x.shape[-1]
        q = torch.empty(x.shape, dtype=qdtype, device=x.device)
        scale = torch.empty(*x.shape[:-1], 1, dtype=torch.float32, device=x.device)
        res_out = None
        if residual is not None:
            residual = residual.contiguous()
            res_out = torch.empty_like(x)
        err = _CUDA_ERROR_NOT_SUPPORTED if self._rms_quant is None else self._rms_quant(
            x.data_ptr(), residual.data_ptr() if residual is not None else None, weight.data_ptr(),
            q.data_ptr(), scale.data_ptr(), res_out.data_ptr() if res_out is not None else None,
            x.numel() // hidden, hidden, epsilon, _DTYPES[x.dtype], _DTYPES[qdtype],
            torch.cuda.current_stream(x.device).cuda_stream)
        if err == _CUDA_ERROR_NOT_SUPPORTED:
            y, res_out = self.rms_norm(x, weight, residual, epsilon)
            q, scale = self.quantize_per_token(y, target, float_scale=True)
            return q, scale, res_out
        self._check(err, "rms_norm_quantize")
        return q, scale, res_out

    def silu_mul_quantize(self, x: torch.Tensor, target: str) -> tuple[torch.Tensor, torch.Tensor]:
        """SiluMul whose output is quantized per token instead of written: -> (codes, scale
        float32 [.., 1]); rows the fused kernel does not take run both kernels."""
        qdtype = self._quant_dtype("silu_mul_quantize", x, target)
        x = x.contiguous()
        inter = x.shape[-1] // 2
        q = torch.empty(*x.shape[:-1], inter, dtype=qdtype, device=x.device)
        scale = torch.empty(*x.shape[:-1], 1, dtype=torch.float32, device=x.device)
        err = _CUDA_ERROR_NOT_SUPPORTED if self._silu_quant is None else self._silu_quant(
            x.data_ptr(), q.data_ptr(), scale.data_ptr(), x.numel() // (2 * inter), inter,
            _DTYPES[x.dtype], _DTYPES[qdtype], torch.cuda.current_stream(x.device).cuda_stream)
        if err == _CUDA_ERROR_NOT_SUPPORTED:
            return self.quantize_per_token(self.silu_mul(x), target, float_scale=True)
        self._check(err, "silu_mul_quantize")
        return q, scale

    def quantize_per_token(self, x: torch.Tensor, target: str, float_scale: bool = False
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [.., K] -> (q int8 | float8_e4m3fn [.., K], scale [.., 1] in x's dtype, or with
        float_scale that value as float32: what the W8A8 GEMM takes, with no widening copy)."""
        qdtype = self._quant_dtype("quantize_per_token", x, target)
        widen = float_scale and self._quant_f32 is None          # a library built before it
        fn = self._quant if not float_scale or widen else self._quant_f32
        lead, k = x.shape[:-1], x.shape[-1]
        rows = x.numel() // k if k else 0
        q = torch.empty(*lead, k, dtype=qdtype, device=x.device)
        scale_dtype = torch.float32 if float_scale and not widen else x.dtype
        scale = torch.empty(*lead, 1, dtype=scale_dtype, device=x.device)
        if rows > 0:
            x2 = _rows(x, rows)
            err = fn(x2.data_ptr(), x2.stride(0), q.data_ptr(), scale.data_ptr(), rows, k,
                     _DTYPES[x.dtype], _DTYPES[qdtype], torch.cuda.current_stream(x.device).cuda_stream)
            self._check(err, "quantize_per_token")
        return q, scale.float() if widen else scale

    def paged_attention(self, q, k, v, positions, query_start_loc, seq_lens, block_tables,
                        slot_mapping, kv_cache, inv_freq, kv_scales, layer_idx, num_heads,
                        num_kv_heads, head_dim, scale, sliding_window, rotary_dim,
                        rotary_scaling, fused_qkv) -> torch.Tensor:
        lead = q.shape[:-1]
        t = q.shape[-2]
        hq, hkv, d = num_heads, num_kv_heads, head_dim
        qf = _rows(q, t)
        if fused_qkv:
            kf = qf[:, hq * d:(hq + hkv) * d]
            vf = qf[:, (hq + hkv) * d:]
        else:
            kf, vf = _rows(k, t), _rows(v, t)
        layer = kv_cache[layer_idx]                                  # [2, N, b, Hkv, D]
        if not layer.is_contiguous():
            raise UnsupportedOpError("paged_attention: kv_cache must be contiguous")
        block_tables = _i32(block_tables)
        p = self._params
        p.num_tokens, p.num_seqs = t, seq_lens.shape[0]
        p.num_heads, p.num_kv_heads, p.head_dim = hq, hkv, d
        p.block_size, p.num_blocks = layer.shape[2], layer.shape[1]
        p.max_blocks_per_seq = block_tables.shape[1]
        p.q_stride, p.k_stride, p.v_stride = qf.stride(0), kf.stride(0), vf.stride(0)
        p.rotary_dim, p.sliding_window = rotary_dim, sliding_window
        p.scale, p.rotary_scaling = scale, rotary_scaling
        p.dtype, p.kv_dtype = _DTYPES[q.dtype], _DTYPES.get(layer.dtype, -1)
        scales = None
        if layer.dtype in _QUANTIZED_POOLS:
            if kv_scales is None:
                raise UnsupportedOpError(f"paged_attention: a {layer.dtype} KV cache needs its "
                                         "kv_scales input (float32 [L, 2])")
            scales = kv_scales[layer_idx].float().contiguous()        # [2]: this layer's (k, v)
        p.split_counters = self._counters_for(q.device, p.num_seqs * hq).data_ptr()
        need = self._pa_ws(self._params_ref)
        if need == 0:
            self._check(_CUDA_ERROR_NOT_SUPPORTED, "paged_attention")
        ws = self._workspace_for(q.device, need)
        out = torch.empty(t, hq * d, dtype=q.dtype, device=q.device)
        inv = inv_freq.float().contiguous() if rotary_dim > 0 else None
        err = self._pa(self._params_ref, qf.data_ptr(), kf.data_ptr(), vf.data_ptr(),
                       _i32(positions).data_ptr(), _i32(query_start_loc).data_ptr(),
                       _i32(seq_lens).data_ptr(), block_tables.data_ptr(),
                       _i32(slot_mapping).data_ptr(), layer.data_ptr(),
                       inv.data_ptr() if inv is not None else None,
                       scales.data_ptr() if scales is not None else None,
                       out.data_ptr(), ws.data_ptr(), ws.numel(),
                       torch.cuda.current_stream(q.device).cuda_stream)
        self._check(err, "paged_attention")
        return out.reshape(*lead, hq * d)


@functools.cache
def load() -> KernelLibrary:
    """The kernel library, loaded once; BackendUnavailableError when it is missing."""
    path = library_path()
    if not path.is_file():
        raise BackendUnavailableError(
            f"CUDA kernel library not found at {path}. Build it with `make kernels` (needs "
            f"nvcc) or set {ENV_VAR} to its path.")
    return KernelLibrary(path)


@functools.cache
def register_cuda_impls() -> None:
    """Registers the CUDA kernels as the CUDA implementations of the trtcompile ops (once)."""
    from trtcompile.ops.torch_ops import LIBRARY

    lib = load()
    LIBRARY.impl("paged_attention", lib.paged_attention, "CUDA")
    LIBRARY.impl("rms_norm", lib.rms_norm, "CUDA")
    LIBRARY.impl("silu_mul", lib.silu_mul, "CUDA")
    LIBRARY.impl("weight_only_gemm", lib.weight_only_gemm, "CUDA")
    LIBRARY.impl("quantize_per_token", lib.quantize_per_token, "CUDA")
    LIBRARY.impl("rms_norm_quantize", lib.rms_norm_quantize, "CUDA")
    LIBRARY.impl("silu_mul_quantize", lib.silu_mul_quantize, "CUDA")
