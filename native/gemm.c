/*
 * rlhf-kit's own single-precision GEMM, compiled at `npm install` (scripts/build-native.mjs) for the
 * machine it runs on, so the fast matmul path needs no system BLAS. Bound through koffi like OpenBLAS
 * (src/engine/blas/library.ts) and used by the wasm backend's BatchMatMul when no OpenBLAS loads.
 *
 * The algorithm is the Goto/BLIS one: B is packed into KC x NR column strips and A into MR x KC row
 * strips (zero-padded at the edges), and a register-blocked MR x NR micro-kernel accumulates
 * op(A)·op(B) into C. The micro-kernel uses GCC/Clang vector extensions, so the same source becomes
 * AVX-512, AVX2 or NEON code for whatever `-march=native` finds. Threads (OpenMP) split C into
 * slabs; small products skip packing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__)
#define VL 16 /* floats per vector register */
#else
#define VL 8
#endif
#ifndef MR
#define MR 6 /* rows of the micro-kernel: MR x NV accumulators stay in registers */
#endif
#ifndef NV
#define NV 2
#endif
#define NR (VL * NV)
#ifndef KC
#define KC 256
#endif
#ifndef MC
#define MC 96 /* rows of A packed at once (a multiple of MR) */
#endif
#define NC 1024 /* columns of B packed at once (a multiple of NR) */
#define FEW_ROWS 8 /* products with at most this many rows take gemm_few (decoding) */

typedef float vf __attribute__((vector_size(VL * 4)));

static int threads_wanted = 1;

void rlhf_gemm_set_threads(int n) { threads_wanted = n < 1 ? 1 : n; }
int rlhf_gemm_get_threads(void) { return threads_wanted; }
int rlhf_gemm_vector_floats(void) { return VL; }

/* A(i, p) and B(p, j) of op(A) [m, k] and op(B) [k, n], row-major storage. */
#define A_AT(i, p) (ta ? a[(size_t)(p) * lda + (i)] : a[(size_t)(i) * lda + (p)])
#define B_AT(p, j) (tb ? b[(size_t)(j) * ldb + (p)] : b[(size_t)(p) * ldb + (j)])

/* Pack rows [i0, i0+mc) x depth [p0, p0+kc) of op(A) into MR-row strips: strip s holds, for each p, MR values. */
static void pack_a(int ta, const float *a, int lda, int i0, int mc, int p0, int kc, float *dst) {
  for (int s = 0; s < mc; s += MR) {
    int rows = mc - s < MR ? mc - s : MR;
    float *out = dst + (size_t)s * kc;
    if (!ta) {
      for (int p = 0; p < kc; p++) {
        int r = 0;
        for (; r < rows; r++) out[p * MR + r] = a[(size_t)(i0 + s + r) * lda + p0 + p];
        for (; r < MR; r++) out[p * MR + r] = 0.f;
      }
    } else {
      for (int p = 0; p < kc; p++) {
        const float *src = a + (size_t)(p0 + p) * lda + i0 + s;
        int r = 0;
        for (; r < rows; r++) out[p * MR + r] = src[r];
        for (; r < MR; r++) out[p * MR + r] = 0.f;
      }
    }
  }
}

static inline float bf16_to_float(uint16_t bits) {
  uint32_t u = (uint32_t)bits << 16; /* bfloat16 is float32's upper half: exact */
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline float f32_value(float v) { return v; }

/*
 * In-register transposition of VL x VL floats: v[r] lane l becomes v[l] lane r. Each stage swaps bit d
 * of the row index with bit d of the lane index (two-source shuffles), log2(VL) stages in all. Packing
 * a transposed B and rlhf_transpose use it: one element at a time, they ran at ~1 GB/s.
 */
typedef int32_t vi __attribute__((vector_size(VL * 4)));
#if VL == 16
static const vi T_LO[4] = {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
                           {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
                           {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
                           {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}};
static const vi T_HI[4] = {{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31},
                           {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31},
                           {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31},
                           {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}};
#else
static const vi T_LO[3] = {{0, 1, 2, 3, 8, 9, 10, 11}, {0, 1, 8, 9, 4, 5, 12, 13}, {0, 8, 2, 10, 4, 12, 6, 14}};
static const vi T_HI[3] = {{4, 5, 6, 7, 12, 13, 14, 15}, {2, 3, 10, 11, 6, 7, 14, 15}, {1, 9, 3, 11, 5, 13, 7, 15}};
#endif

static inline __attribute__((always_inline)) void transpose_square(vf v[VL]) {
  int stage = 0;
#pragma GCC unroll 8
  for (int d = VL / 2; d >= 1; d /= 2, stage++) {
#pragma GCC unroll 16
    for (int i = 0; i < VL; i++) {
      if (i & d) continue;
      vf lo = __builtin_shuffle(v[i], v[i + d], T_LO[stage]);
      vf hi = __builtin_shuffle(v[i], v[i + d], T_HI[stage]);
      v[i] = lo;
      v[i + d] = hi;
    }
  }
}

/* VL consecutive values of a float32 or bfloat16 row as one float vector. */
static inline void load_f32(vf *v, const float *src) { memcpy(v, src, sizeof *v); }

typedef uint16_t vh __attribute__((vector_size(VL * 2)));
typedef uint32_t vu __attribute__((vector_size(VL * 4)));
static inline void load_bf16(vf *v, const uint16_t *src) {
  vh h;
  memcpy(&h, src, sizeof h);
  vu u = __builtin_convertvector(h, vu) << 16; /* bfloat16 is float32's upper half: exact */
  memcpy(v, &u, sizeof *v);
}

/*
 * Pack depth [p0, p0+kc) x columns [j0, j0+nc) of op(B) into NR-column strips (zero-padded), B's
 * elements of type T read through LOAD: float32 as is, or bfloat16 bits upcast here, once per packed
 * value (a frozen weight is never copied to float32 whole).
 */
#define DEFINE_PACK_B(name, T, LOAD, LOADV)                                                          \
  static void name(int tb, const T *b, int ldb, int p0, int kc, int j0, int nc, float *dst) { \
    for (int s = 0; s < nc; s += NR) {                                                        \
      int cols = nc - s < NR ? nc - s : NR;                                                   \
      float *out = dst + (size_t)s * kc;                                                      \
      if (!tb) {                                                                              \
        for (int p = 0; p < kc; p++) {                                                        \
          const T *src = b + (size_t)(p0 + p) * ldb + j0 + s;                                 \
          int c = 0;                                                                          \
          for (; c < cols; c++) out[p * NR + c] = LOAD(src[c]);                              \
          for (; c < NR; c++) out[p * NR + c] = 0.f;                                          \
        }                                                                                     \
      } else {                                                                                \
        int p_vec = 0; /* full strips: VL x VL blocks transposed in registers */              \
        if (cols == NR) {                                                                     \
          for (; p_vec + VL <= kc; p_vec += VL) {                                             \
            for (int v = 0; v < NV; v++) {                                                    \
              vf blk[VL];                                                                     \
              const T *src = b + (size_t)(j0 + s + v * VL) * ldb + p0 + p_vec;                \
              for (int r = 0; r < VL; r++) LOADV(&blk[r], src + (size_t)r * ldb);                 \
              transpose_square(blk);                                                          \
              for (int q = 0; q < VL; q++) memcpy(out + (size_t)(p_vec + q) * NR + v * VL, &blk[q], sizeof(vf)); \
            }                                                                                 \
          }                                                                                   \
        }                                                                                     \
        for (int c = 0; c < NR; c++) {                                                        \
          if (c < cols) {                                                                     \
            const T *src = b + (size_t)(j0 + s + c) * ldb + p0;                               \
            for (int p = p_vec; p < kc; p++) out[p * NR + c] = LOAD(src[p]);                  \
          } else {                                                                            \
            for (int p = p_vec; p < kc; p++) out[p * NR + c] = 0.f;                           \
          }                                                                                   \
        }                                                                                     \
      }                                                                                       \
    }                                                                                         \
  }

DEFINE_PACK_B(pack_b, float, f32_value, load_f32)
DEFINE_PACK_B(pack_b_bf16, uint16_t, bf16_to_float, load_bf16)

/* C[mr, nr] (=|+=) Ap[MR, kc] · Bp[kc, NR]; mr <= MR, nr <= NR (edges go through a local tile). */
static void micro_kernel(int kc, const float *restrict ap, const float *restrict bp, float *restrict c, int ldc,
                         int mr, int nr, int accumulate) {
  vf acc[MR][NV];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) acc[i][v] = (vf){0};
  for (int p = 0; p < kc; p++) {
    vf bv[NV];
    for (int v = 0; v < NV; v++) bv[v] = *(const vf *)(bp + (size_t)p * NR + v * VL);
    for (int i = 0; i < MR; i++) {
      float s = ap[(size_t)p * MR + i];
      for (int v = 0; v < NV; v++) acc[i][v] += s * bv[v];
    }
  }
  if (mr == MR && nr == NR) {
    for (int i = 0; i < MR; i++) {
      for (int v = 0; v < NV; v++) {
        float *dst = c + (size_t)i * ldc + v * VL;
        vf cur;
        if (accumulate) {
          memcpy(&cur, dst, sizeof cur);
          cur += acc[i][v];
        } else {
          cur = acc[i][v];
        }
        memcpy(dst, &cur, sizeof cur);
      }
    }
    return;
  }
  float tile[MR][NR] __attribute__((aligned(64)));
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) memcpy(&tile[i][v * VL], &acc[i][v], sizeof(vf));
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j++) c[(size_t)i * ldc + j] = accumulate ? c[(size_t)i * ldc + j] + tile[i][j] : tile[i][j];
}

/* Products this small skip packing: a plain loop with the inner index over C's row. */
static void gemm_small(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                       float *c, int ldc) {
  for (int i = 0; i < m; i++) {
    float *ci = c + (size_t)i * ldc;
    for (int j = 0; j < n; j++) ci[j] = 0.f;
    if (!tb) {
      for (int p = 0; p < k; p++) {
        float s = A_AT(i, p);
        const float *bp = b + (size_t)p * ldb;
        for (int j = 0; j < n; j++) ci[j] += s * bp[j];
      }
    } else {
      for (int j = 0; j < n; j++) {
        const float *bj = b + (size_t)j * ldb;
        float s = 0.f;
        if (!ta) {
          const float *ai = a + (size_t)i * lda;
          for (int p = 0; p < k; p++) s += ai[p] * bj[p];
        } else {
          for (int p = 0; p < k; p++) s += a[(size_t)p * lda + i] * bj[p];
        }
        ci[j] = s;
      }
    }
  }
}

static void *aligned_buffer(size_t floats) {
  void *p = NULL;
  if (posix_memalign(&p, 64, floats * sizeof(float) + 64) != 0) return NULL;
  return p;
}

/*
 * Few-row products (decoding: one row per sequence) skip the block packing: packing all of B costs
 * about as much as multiplying it once, and MR-row strips would waste most of a second strip on 8
 * rows. Each NR-column panel of op(B) is read straight from B (row-major, untransposed float32) or
 * packed alone into a small buffer that stays in L1 (transposed or bfloat16 B, edge panels), and
 * all `rows` rows are accumulated against it in registers. The arithmetic is exactly the packed
 * path's: the same equal depth blocks, each summed from zero over p with the same multiply-adds,
 * then added to C, so results do not change with the number of rows.
 */
static inline __attribute__((always_inline)) void few_kernel(const int rows, int ta, int kc, const float *a, int lda,
                                                            int p0, const float *restrict bp, size_t bstride,
                                                            float *restrict c, int ldc, int nr, int accumulate) {
  vf acc[FEW_ROWS][NV];
  for (int i = 0; i < rows; i++)
    for (int v = 0; v < NV; v++) acc[i][v] = (vf){0};
  for (int p = 0; p < kc; p++) {
    vf bv[NV];
    for (int v = 0; v < NV; v++) memcpy(&bv[v], bp + (size_t)p * bstride + v * VL, sizeof(vf));
    for (int i = 0; i < rows; i++) {
      float s = ta ? a[(size_t)(p0 + p) * lda + i] : a[(size_t)i * lda + p0 + p];
      for (int v = 0; v < NV; v++) acc[i][v] += s * bv[v];
    }
  }
  for (int i = 0; i < rows; i++) {
    float tile[NR] __attribute__((aligned(64)));
    for (int v = 0; v < NV; v++) memcpy(&tile[v * VL], &acc[i][v], sizeof(vf));
    float *dst = c + (size_t)i * ldc;
    if (nr == NR && !accumulate) {
      memcpy(dst, tile, sizeof tile);
    } else if (nr == NR) {
      for (int v = 0; v < NV; v++) {
        vf cur;
        memcpy(&cur, dst + v * VL, sizeof cur);
        cur += acc[i][v];
        memcpy(dst + v * VL, &cur, sizeof cur);
      }
    } else {
      for (int j = 0; j < nr; j++) dst[j] = accumulate ? dst[j] + tile[j] : tile[j];
    }
  }
}

static void few_kernel_rows(int rows, int ta, int kc, const float *a, int lda, int p0, const float *bp, size_t bstride,
                            float *c, int ldc, int nr, int accumulate) {
  switch (rows) { /* constant row counts, so the accumulators stay in registers */
#define FEW_CASE(R) \
  case R: few_kernel(R, ta, kc, a, lda, p0, bp, bstride, c, ldc, nr, accumulate); break;
    FEW_CASE(1) FEW_CASE(2) FEW_CASE(3) FEW_CASE(4) FEW_CASE(5) FEW_CASE(6) FEW_CASE(7) FEW_CASE(8)
#undef FEW_CASE
  }
}

/*
 * Depth of the equal depth blocks a k-long product is summed in (576 = 3 x 192, not 256 + 256 + 64: a
 * thin last block runs at a fraction of the speed, since C is read and written once per block). Both
 * paths use it, so they sum in the same order.
 */
static inline int depth_block(int k) { return (k + (k + KC - 1) / KC - 1) / ((k + KC - 1) / KC); }

/* m <= FEW_ROWS: every row at once against each panel. */
static int gemm_few(int ta, int tb, int m, int n, int k, const float *a, int lda, const void *b, int b_bf16, int ldb,
                    float *c, int ldc) {
  int kc_max = depth_block(k);
  float *panel = aligned_buffer((size_t)kc_max * NR);
  if (panel == NULL) return -1;
  for (int j0 = 0; j0 < n; j0 += NR) {
    int nr = n - j0 < NR ? n - j0 : NR;
    for (int p0 = 0; p0 < k; p0 += kc_max) {
      int kc = k - p0 < kc_max ? k - p0 : kc_max;
      const float *bp;
      size_t bstride;
      if (!b_bf16 && !tb && nr == NR) {
        bp = (const float *)b + (size_t)p0 * ldb + j0;
        bstride = (size_t)ldb;
      } else {
        if (b_bf16) pack_b_bf16(tb, (const uint16_t *)b, ldb, p0, kc, j0, nr, panel);
        else pack_b(tb, (const float *)b, ldb, p0, kc, j0, nr, panel);
        bp = panel;
        bstride = NR;
      }
      few_kernel_rows(m, ta, kc, a, lda, p0, bp, bstride, c + j0, ldc, nr, p0 > 0);
    }
  }
  free(panel);
  return 0;
}

/* One thread's GEMM: loops over column blocks (NC), depth blocks (KC) and row blocks (MC). */
static int gemm_serial(int ta, int tb, int m, int n, int k, const float *a, int lda, const void *b, int b_bf16,
                       int ldb, float *c, int ldc) {
  if (m <= FEW_ROWS) return gemm_few(ta, tb, m, n, k, a, lda, b, b_bf16, ldb, c, ldc);
  int kc_max = depth_block(k);
  int nc_max = n < NC ? (n + NR - 1) / NR * NR : NC;
  int mc_max = m < MC ? (m + MR - 1) / MR * MR : MC;
  float *bp = aligned_buffer((size_t)kc_max * nc_max);
  float *ap = aligned_buffer((size_t)kc_max * mc_max);
  if (bp == NULL || ap == NULL) {
    free(bp);
    free(ap);
    return -1;
  }
  for (int j0 = 0; j0 < n; j0 += NC) {
    int nc = n - j0 < NC ? n - j0 : NC;
    for (int p0 = 0; p0 < k; p0 += kc_max) {
      int kc = k - p0 < kc_max ? k - p0 : kc_max;
      if (b_bf16) pack_b_bf16(tb, (const uint16_t *)b, ldb, p0, kc, j0, nc, bp);
      else pack_b(tb, (const float *)b, ldb, p0, kc, j0, nc, bp);
      for (int i0 = 0; i0 < m; i0 += MC) {
        int mc = m - i0 < MC ? m - i0 : MC;
        pack_a(ta, a, lda, i0, mc, p0, kc, ap);
        for (int j = 0; j < nc; j += NR) {
          int nr = nc - j < NR ? nc - j : NR;
          for (int i = 0; i < mc; i += MR) {
            int mr = mc - i < MR ? mc - i : MR;
            micro_kernel(kc, ap + (size_t)i * kc, bp + (size_t)j * kc, c + (size_t)(i0 + i) * ldc + j0 + j, ldc, mr, nr,
                         p0 > 0);
          }
        }
      }
    }
  }
  free(bp);
  free(ap);
  return 0;
}

/*
 * C[m, n] = op(A)[m, k] · op(B)[k, n] (alpha 1, beta 0), row-major; op transposes when ta / tb.
 * Returns 0, or -1 when a packing buffer could not be allocated.
 *
 * Threads split C into independent slabs — along its rows when it has at least as many as columns,
 * else along its columns — and each runs the serial GEMM on its slab with its own packing buffers.
 * The one synchronisation is the join at the end: a product never waits on a barrier between its
 * packing and its compute, which costs a whole scheduler slice when the cores are shared.
 */
static int gemm_any(int ta, int tb, int m, int n, int k, const float *a, int lda, const void *b, int b_bf16, int ldb,
                    float *c, int ldc) {
  if (m <= 0 || n <= 0) return 0;
  if (k <= 0) {
    for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, (size_t)n * sizeof(float));
    return 0;
  }
  if (!b_bf16 && ((double)m * n * k < 32768.0 || (m < 4 && !tb))) {
    gemm_small(ta, tb, m, n, k, a, lda, (const float *)b, ldb, c, ldc);
    return 0;
  }
  int threads = threads_wanted;
#ifndef _OPENMP
  threads = 1;
#endif
  int by_rows = m >= n;
  int unit = by_rows ? MR : NR;
  int units = ((by_rows ? m : n) + unit - 1) / unit;
  if (threads > units) threads = units;
  if (threads <= 1) return gemm_serial(ta, tb, m, n, k, a, lda, b, b_bf16, ldb, c, ldc);
  int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
  {
#ifdef _OPENMP
    int t = omp_get_thread_num();
    int count = omp_get_num_threads();
#else
    int t = 0, count = 1;
#endif
    int u0 = (int)((long)units * t / count), u1 = (int)((long)units * (t + 1) / count);
    int lo = u0 * unit, hi = u1 * unit;
    int size = by_rows ? m : n;
    if (hi > size) hi = size;
    if (lo < hi) {
      if (by_rows) {
        const float *as = ta ? a + lo : a + (size_t)lo * lda;
        failed |= gemm_serial(ta, tb, hi - lo, n, k, as, lda, b, b_bf16, ldb, c + (size_t)lo * ldc, ldc) != 0;
      } else {
        size_t offset = tb ? (size_t)lo * ldb : (size_t)lo;
        const void *bs = b_bf16 ? (const void *)((const uint16_t *)b + offset) : (const void *)((const float *)b + offset);
        failed |= gemm_serial(ta, tb, m, hi - lo, k, a, lda, bs, b_bf16, ldb, c + lo, ldc) != 0;
      }
    }
  }
  return failed ? -1 : 0;
}

int rlhf_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
               int ldc) {
  return gemm_any(ta, tb, m, n, k, a, lda, b, 0, ldb, c, ldc);
}

/*
 * The same product with B stored as bfloat16 bits (a frozen weight kept off the wasm heap, 2 bytes a
 * value): each value is upcast while B is packed, so no float32 copy of the weight is ever made.
 */
int rlhf_sgemm_bf16b(int ta, int tb, int m, int n, int k, const float *a, int lda, const uint16_t *b, int ldb,
                     float *c, int ldc) {
  return gemm_any(ta, tb, m, n, k, a, lda, b, 1, ldb, c, ldc);
}

/* B[cols, rows] = Aᵀ for a row-major A [rows, cols]: VL x VL blocks transposed in registers, edges one by one. */
void rlhf_transpose(int rows, int cols, const float *a, float *b) {
  int rv = rows / VL * VL, cv = cols / VL * VL;
  for (int i0 = 0; i0 < rv; i0 += VL) {
    for (int j0 = 0; j0 < cv; j0 += VL) {
      vf blk[VL];
      for (int r = 0; r < VL; r++) load_f32(&blk[r], a + (size_t)(i0 + r) * cols + j0);
      transpose_square(blk);
      for (int q = 0; q < VL; q++) memcpy(b + (size_t)(j0 + q) * rows + i0, &blk[q], sizeof(vf));
    }
    for (int i = i0; i < i0 + VL; i++)
      for (int j = cv; j < cols; j++) b[(size_t)j * rows + i] = a[(size_t)i * cols + j];
  }
  for (int i = rv; i < rows; i++)
    for (int j = 0; j < cols; j++) b[(size_t)j * rows + i] = a[(size_t)i * cols + j];
}
