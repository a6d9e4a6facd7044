// CPU kernels that ATen has no fast path for; built on first use by genforge.kernels
// (torch.utils.cpp_extension, -O3 -march=native) and called through torch.ops.genforge_cpu.
#include <torch/extension.h>
#include <torch/library.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

namespace {

// Calls f with std::integral_constant<int64_t, TW>: TW = the tile-row width when it is one of those compiled
// with fixed trip counts (``fixed`` = 4, 8 or 16 tiles), else 0 (the generic loops).
template <typename F>
void with_tile_width(int64_t fixed, F&& f) {
  switch (fixed) {
    case 4: f(std::integral_constant<int64_t, 4>{}); break;
    case 8: f(std::integral_constant<int64_t, 8>{}); break;
    case 16: f(std::integral_constant<int64_t, 16>{}); break;
    default: f(std::integral_constant<int64_t, 0>{}); break;
  }
}

// Winograd F(2x2, 3x3) input transform V = B^T d B of every 4x4 tile (stride 2) of one zero-padded
// (padding 1) image channel. TW > 0 is the number of tiles per row known at compile time (W == 2 * TW):
// small images (8x8, 16x16) have tile rows of 4-8 tiles, where loop overhead, not arithmetic, is the
// cost, and fixed trip counts let the compiler unroll it away. TW == 0 handles any size.
template <int64_t TW>
void winograd_input_channel(const float* img, int64_t H, int64_t W_rt, int64_t tw_rt, int64_t th, float* ev,
                            float* od, float* __restrict te, float* __restrict to, float* o_first, int64_t plane) {
  const int64_t tw = TW > 0 ? TW : tw_rt, W = TW > 0 ? 2 * TW : W_rt, hw = tw + 1;
  // The padded image split into even and odd columns, so that every loop below reads and writes
  // contiguously: ev[y][q] = image[y - 1][2q - 1], od[y][q] = image[y - 1][2q] (zero outside; the
  // caller's buffers start zeroed and only these positions are ever written).
  for (int64_t y = 0; y < H; ++y) {
    const float* __restrict src = img + y * W;
    float* __restrict e = ev + (y + 1) * hw;
    float* __restrict d = od + (y + 1) * hw;
    for (int64_t q = 0; q < W / 2; ++q) {
      d[q] = src[2 * q];
      e[q + 1] = src[2 * q + 1];
    }
    if (W % 2) d[W / 2] = src[W - 1];
  }
  for (int64_t i = 0; i < th; ++i) {
    const float* __restrict e0 = ev + 2 * i * hw;
    const float* __restrict e1 = e0 + hw;
    const float* __restrict e2 = e1 + hw;
    const float* __restrict e3 = e2 + hw;
    const float* __restrict d0 = od + 2 * i * hw;
    const float* __restrict d1 = d0 + hw;
    const float* __restrict d2 = d1 + hw;
    const float* __restrict d3 = d2 + hw;
#pragma omp simd
    for (int64_t q = 0; q < hw; ++q) {
      te[q] = e0[q] - e2[q]; te[hw + q] = e1[q] + e2[q]; te[2 * hw + q] = e2[q] - e1[q]; te[3 * hw + q] = e1[q] - e3[q];
      to[q] = d0[q] - d2[q]; to[hw + q] = d1[q] + d2[q]; to[2 * hw + q] = d2[q] - d1[q]; to[3 * hw + q] = d1[q] - d3[q];
    }
    float* o = o_first + i * tw;
    for (int r = 0; r < 4; ++r) {
      const float* __restrict a = te + r * hw;
      const float* __restrict b = to + r * hw;
      float* __restrict o0 = o + (4 * r) * plane;
      float* __restrict o1 = o0 + plane;
      float* __restrict o2 = o1 + plane;
      float* __restrict o3 = o2 + plane;
#pragma omp simd
      for (int64_t j = 0; j < tw; ++j) {
        o0[j] = a[j] - a[j + 1];
        o1[j] = b[j] + a[j + 1];
        o2[j] = a[j + 1] - b[j];
        o3[j] = b[j] - b[j + 1];
      }
    }
  }
}

// x [N, C, H, W] -> V [16, C, N * th * tw], th = ceil(H / 2), tw = ceil(W / 2).
torch::Tensor winograd_input(const torch::Tensor& x_in) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.scalar_type() == torch::kFloat && x_in.device().is_cpu(),
              "winograd_input: expected a float32 CPU tensor [N, C, H, W]");
  const auto x = x_in.contiguous();
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t th = (H + 1) / 2, tw = (W + 1) / 2, T = N * th * tw, plane = C * T;
  auto V = torch::empty({16, C, T}, x.options());
  const float* X = x.data_ptr<float>();
  float* out = V.data_ptr<float>();
  const int64_t fixed = W == 2 * tw ? tw : 0;
  at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
    const int64_t hw = tw + 1, rows = 2 * th + 2;
    std::vector<float> buf(2 * rows * hw + 8 * hw, 0.f);
    float* ev = buf.data();
    float* od = ev + rows * hw;
    float* te = od + rows * hw;  // row-transformed even columns of one tile row, 4 x hw
    float* to = te + 4 * hw;     // row-transformed odd columns, 4 x hw
    for (int64_t nc = begin; nc < end; ++nc) {
      const int64_t n = nc / C, c = nc % C;
      const float* img = X + nc * H * W;
      float* o = out + c * T + n * th * tw;
      with_tile_width(fixed, [&](auto width) {
        winograd_input_channel<decltype(width)::value>(img, H, W, tw, th, ev, od, te, to, o, plane);
      });
    }
  });
  return V;
}

// Winograd F(2x2, 3x3) output transform Y = A^T m A of one output channel's tiles, plus bias and an
// optional residual. TW as in winograd_input_channel.
template <int64_t TW>
void winograd_output_channel(const float* mm_first, int64_t plane, int64_t th, int64_t tw_rt, int64_t H,
                             int64_t W_rt, float beta, const float* add_first, float* dst_first,
                             float* __restrict top, float* __restrict bot) {
  const int64_t tw = TW > 0 ? TW : tw_rt, W = TW > 0 ? 2 * TW : W_rt;
  for (int64_t i = 0; i < th; ++i) {
    const float* mm = mm_first + i * tw;
#pragma omp simd
    for (int64_t j = 0; j < tw; ++j) {
      float s[2][4];
      for (int k = 0; k < 4; ++k) {
        const float a0 = mm[(0 + k) * plane + j], a1 = mm[(4 + k) * plane + j];
        const float a2 = mm[(8 + k) * plane + j], a3 = mm[(12 + k) * plane + j];
        s[0][k] = a0 + a1 + a2;
        s[1][k] = a1 - a2 - a3;
      }
      top[2 * j] = s[0][0] + s[0][1] + s[0][2] + beta;
      top[2 * j + 1] = s[0][1] - s[0][2] - s[0][3] + beta;
      bot[2 * j] = s[1][0] + s[1][1] + s[1][2] + beta;
      bot[2 * j + 1] = s[1][1] - s[1][2] - s[1][3] + beta;
    }
    for (int r = 0; r < 2; ++r) {
      const int64_t yy = 2 * i + r;
      if (yy >= H) break;
      float* __restrict dst = dst_first + yy * W;
      const float* __restrict src = r == 0 ? top : bot;
      if (add_first) {
        const float* __restrict add = add_first + yy * W;
#pragma omp simd
        for (int64_t xx = 0; xx < W; ++xx) dst[xx] = src[xx] + add[xx];
      } else {
        std::copy(src, src + W, dst);
      }
    }
  }
}

// M [16, O, N * th * tw] -> Y [N, O, H, W] (+ bias, + residual).
torch::Tensor winograd_output(const torch::Tensor& M_in, const c10::optional<torch::Tensor>& bias,
                              const c10::optional<torch::Tensor>& residual, int64_t N, int64_t H, int64_t W) {
  TORCH_CHECK(M_in.dim() == 3 && M_in.size(0) == 16 && M_in.scalar_type() == torch::kFloat,
              "winograd_output: expected float32 [16, O, tiles]");
  const auto M = M_in.contiguous();
  const int64_t O = M.size(1), th = (H + 1) / 2, tw = (W + 1) / 2, T = N * th * tw, plane = O * T;
  TORCH_CHECK(M.size(2) == T, "winograd_output: tile count does not match N, H, W");
  auto Y = torch::empty({N, O, H, W}, M.options());
  torch::Tensor b, res;
  if (bias.has_value() && bias->defined()) b = bias->contiguous();
  if (residual.has_value() && residual->defined()) {
    res = residual->contiguous();
    TORCH_CHECK(res.sizes() == Y.sizes(), "winograd_output: residual must be [N, O, H, W]");
  }
  const float* m = M.data_ptr<float>();
  const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
  const float* rp = res.defined() ? res.data_ptr<float>() : nullptr;
  float* y = Y.data_ptr<float>();
  const int64_t fixed = W == 2 * tw ? tw : 0;
  at::parallel_for(0, N * O, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> pair(2 * (2 * tw));
    float* top = pair.data();
    float* bot = top + 2 * tw;
    for (int64_t no = begin; no < end; ++no) {
      const int64_t n = no / O, o = no % O;
      const float beta = bp ? bp[o] : 0.f;
      const float* mm = m + o * T + n * th * tw;
      const float* add = rp ? rp + no * H * W : nullptr;
      float* dst = y + no * H * W;
      with_tile_width(fixed, [&](auto width) {
        winograd_output_channel<decltype(width)::value>(mm, plane, th, tw, H, W, beta, add, dst, top, bot);
      });
    }
  });
  return Y;
}

// y = x w^T + b for a few rows (x [R, K], w [N, K]): the decode step's linear layers. Each weight row
// is streamed from memory once for all rows of x, and the rows eight features ahead are prefetched
// into L2 so that the weight stream (cold: a model's weights do not fit in L3) overlaps the
// multiply-adds, which one core does not do by itself. Eight rows into L2 measured best of 4-64 rows
// and L1 / L2 / L3 / non-temporal hints (batch 8, nanoGPT-size layers: 560 us vs 830 us into L1).
#ifdef __AVX512F__
#include <immintrin.h>
#ifndef GENFORGE_PREFETCH_ROWS
#define GENFORGE_PREFETCH_ROWS 8
#endif
#ifndef GENFORGE_PREFETCH_HINT
#define GENFORGE_PREFETCH_HINT _MM_HINT_T1
#endif
constexpr int64_t kPrefetchRows = GENFORGE_PREFETCH_ROWS;

// R rows, F output features per pass: R x F independent accumulator chains (at least eight keep the
// two FMA pipes busy; one row alone would otherwise wait on a single chain's latency).
template <int R, int F>
void rows_linear_block(const float* X, int64_t K, const float* W, int64_t N, const float* bias, float* Y,
                       int64_t ldy) {
  const int64_t full = K / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (K - full)) - 1u);
  int64_t j = 0;
  for (; j + F <= N; j += F) {
    __m512 acc[R][F];
    for (int r = 0; r < R; ++r)
      for (int f = 0; f < F; ++f) acc[r][f] = _mm512_setzero_ps();
    const float* w = W + j * K;
    const bool prefetch = j + F - 1 + kPrefetchRows < N;
    for (int64_t i = 0; i < full; i += 16) {
      __m512 v[F];
      for (int f = 0; f < F; ++f) {
        if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(w + (kPrefetchRows + f) * K + i), GENFORGE_PREFETCH_HINT);
        v[f] = _mm512_loadu_ps(w + f * K + i);
      }
      for (int r = 0; r < R; ++r) {
        const __m512 xv = _mm512_loadu_ps(X + r * K + i);
        for (int f = 0; f < F; ++f) acc[r][f] = _mm512_fmadd_ps(v[f], xv, acc[r][f]);
      }
    }
    if (tail) {
      __m512 v[F];
      for (int f = 0; f < F; ++f) v[f] = _mm512_maskz_loadu_ps(tail, w + f * K + full);
      for (int r = 0; r < R; ++r) {
        const __m512 xv = _mm512_maskz_loadu_ps(tail, X + r * K + full);
        for (int f = 0; f < F; ++f) acc[r][f] = _mm512_fmadd_ps(v[f], xv, acc[r][f]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int f = 0; f < F; ++f) Y[r * ldy + j + f] = _mm512_reduce_add_ps(acc[r][f]) + (bias ? bias[j + f] : 0.f);
  }
  for (; j < N; ++j) {  // the last N % F features
    for (int r = 0; r < R; ++r) {
      float acc = bias ? bias[j] : 0.f;
      for (int64_t i = 0; i < K; ++i) acc += X[r * K + i] * W[j * K + i];
      Y[r * ldy + j] = acc;
    }
  }
}

torch::Tensor rows_linear(const torch::Tensor& x_in, const torch::Tensor& w_in, const c10::optional<torch::Tensor>& b_in) {
  TORCH_CHECK(x_in.dim() == 2 && w_in.dim() == 2 && x_in.size(1) == w_in.size(1),
              "rows_linear: expected x [R, K] and weight [N, K]");
  TORCH_CHECK(x_in.scalar_type() == torch::kFloat && w_in.scalar_type() == torch::kFloat,
              "rows_linear: expected float32");
  const auto x = x_in.contiguous();
  const auto w = w_in.contiguous();
  torch::Tensor b;
  if (b_in.has_value() && b_in->defined()) b = b_in->contiguous();
  const int64_t R = x.size(0), K = x.size(1), N = w.size(0);
  auto y = torch::empty({R, N}, x.options());
  const float* X = x.data_ptr<float>();
  const float* W = w.data_ptr<float>();
  const float* B = b.defined() ? b.data_ptr<float>() : nullptr;
  float* Y = y.data_ptr<float>();
  for (int64_t r0 = 0; r0 < R; r0 += 8) {
    const float* xr = X + r0 * K;
    float* yr = Y + r0 * N;
    switch (std::min<int64_t>(8, R - r0)) {
      case 1: rows_linear_block<1, 8>(xr, K, W, N, B, yr, N); break;
      case 2: rows_linear_block<2, 4>(xr, K, W, N, B, yr, N); break;
      case 3: rows_linear_block<3, 3>(xr, K, W, N, B, yr, N); break;
      case 4: rows_linear_block<4, 2>(xr, K, W, N, B, yr, N); break;
      case 5: rows_linear_block<5, 2>(xr, K, W, N, B, yr, N); break;
      case 6: rows_linear_block<6, 2>(xr, K, W, N, B, yr, N); break;
      case 7: rows_linear_block<7, 2>(xr, K, W, N, B, yr, N); break;
      default: rows_linear_block<8, 2>(xr, K, W, N, B, yr, N); break;
    }
  }
  return y;
}
constexpr bool kRowsLinear = true;
#else
torch::Tensor rows_linear(const torch::Tensor&, const torch::Tensor&, const c10::optional<torch::Tensor>&) {
  TORCH_CHECK(false, "rows_linear: this build has no AVX-512 (check has_rows_linear() first)");
}
constexpr bool kRowsLinear = false;
#endif

bool has_rows_linear() { return kRowsLinear; }

// Attention of one new query per head to the filled slots 0..pos of a preallocated KV cache: q [B, H, 1, D],
// k and v [B, H, L, D] (last dimension contiguous), pos a one-element integer tensor. The decode step's
// attention: a few hundred dot products per head, where a Python op with two batched matmuls per layer
// costs more in calls than in arithmetic.
torch::Tensor attend_one_query(const torch::Tensor& q_in, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& pos) {
  TORCH_CHECK(q_in.dim() == 4 && k.dim() == 4 && v.dim() == 4 && q_in.size(2) == 1,
              "attend_one_query: expected q [B, H, 1, D] and caches [B, H, L, D]");
  TORCH_CHECK(q_in.scalar_type() == torch::kFloat && k.scalar_type() == torch::kFloat &&
                  v.scalar_type() == torch::kFloat, "attend_one_query: expected float32");
  TORCH_CHECK(k.sizes() == v.sizes() && k.size(0) == q_in.size(0) && k.size(1) == q_in.size(1) &&
                  k.size(3) == q_in.size(3), "attend_one_query: q, k and v shapes disagree");
  TORCH_CHECK(k.stride(3) == 1 && v.stride(3) == 1, "attend_one_query: caches need a contiguous last dimension");
  const int64_t B = q_in.size(0), H = q_in.size(1), D = q_in.size(3);
  const int64_t end = pos.item<int64_t>() + 1;
  TORCH_CHECK(end >= 1 && end <= k.size(2), "attend_one_query: position outside the cache");
  const auto q = q_in.contiguous();
  auto out = torch::empty({B, H, 1, D}, q.options());
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float* Q = q.data_ptr<float>();
  const float* K = k.data_ptr<float>();
  const float* V = v.data_ptr<float>();
  float* O = out.data_ptr<float>();
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t stop) {
    std::vector<float> p(end);
    for (int64_t bh = begin; bh < stop; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const float* qv = Q + bh * D;
      const float* kb = K + b * k.stride(0) + h * k.stride(1);
      const float* vb = V + b * v.stride(0) + h * v.stride(1);
      float best = -std::numeric_limits<float>::infinity();
      for (int64_t s = 0; s < end; ++s) {
        const float* ks = kb + s * k.stride(2);
        float dot = 0.f;
#pragma omp simd reduction(+ : dot)
        for (int64_t d = 0; d < D; ++d) dot += qv[d] * ks[d];
        p[s] = dot * scale;
        best = std::max(best, p[s]);
      }
      float total = 0.f;
      for (int64_t s = 0; s < end; ++s) {
        p[s] = std::exp(p[s] - best);
        total += p[s];
      }
      float* o = O + bh * D;
      std::fill(o, o + D, 0.f);
      for (int64_t s = 0; s < end; ++s) {
        const float* vs = vb + s * v.stride(2);
        const float w = p[s] / total;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) o[d] += w * vs[d];
      }
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(genforge_cpu, m) {
  m.def("winograd_input(Tensor x) -> Tensor");
  m.def("winograd_output(Tensor m, Tensor? bias, Tensor? residual, int n, int h, int w) -> Tensor");
  m.def("rows_linear(Tensor x, Tensor weight, Tensor? bias) -> Tensor");
  m.def("has_rows_linear() -> bool");
  m.def("attend_one_query(Tensor q, Tensor k, Tensor v, Tensor pos) -> Tensor");
}

TORCH_LIBRARY_IMPL(genforge_cpu, CPU, m) {
  m.impl("winograd_input", &winograd_input);
  m.impl("winograd_output", &winograd_output);
  m.impl("rows_linear", &rows_linear);
  m.impl("attend_one_query", &attend_one_query);
}

TORCH_LIBRARY_IMPL(genforge_cpu, CompositeExplicitAutograd, m) {
  m.impl("has_rows_linear", &has_rows_linear);
}
