#include "common.h"
#include <math.h>
#include <inttypes.h>
#define N 48
static double A[N][N], B[N][N], C[N][N], LU[N][N];
int main(void) {
  rng_seed(2718);
  for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) { A[i][j] = (double)(int32_t)rng32() / 2147483648.0 + (i == j ? N : 0); B[i][j] = (double)(rng32() % 1000) / 100.0 - 5.0; }
  for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) { double s = 0; for (int k = 0; k < N; k++) s += A[i][k] * B[k][j]; C[i][j] = s; }
  printf("C[0][0]=%.17g C[N-1][N-1]=%.17g hash=%016" PRIx64 "\n", C[0][0], C[N - 1][N - 1], fnv(FNV0, C, sizeof C));
  /* LU decomposition with partial pivoting, then determinant and a solve */
  memcpy(LU, A, sizeof A); int piv[N]; double det = 1;
  for (int i = 0; i < N; i++) piv[i] = i;
  for (int k = 0; k < N; k++) { int p = k; for (int i = k + 1; i < N; i++) if (fabs(LU[i][k]) > fabs(LU[p][k])) p = i;
    if (p != k) { for (int j = 0; j < N; j++) { double t = LU[k][j]; LU[k][j] = LU[p][j]; LU[p][j] = t; } int t = piv[k]; piv[k] = piv[p]; piv[p] = t; det = -det; }
    det *= LU[k][k]; for (int i = k + 1; i < N; i++) { LU[i][k] /= LU[k][k]; for (int j = k + 1; j < N; j++) LU[i][j] -= LU[i][k] * LU[k][j]; } }
  double b[N], x[N]; for (int i = 0; i < N; i++) b[i] = i + 1;
  for (int i = 0; i < N; i++) { double s = b[piv[i]]; for (int j = 0; j < i; j++) s -= LU[i][j] * x[j]; x[i] = s; }
  for (int i = N - 1; i >= 0; i--) { double s = x[i]; for (int j = i + 1; j < N; j++) s -= LU[i][j] * x[j]; x[i] = s / LU[i][i]; }
  double res = 0; for (int i = 0; i < N; i++) { double s = 0; for (int j = 0; j < N; j++) s += A[i][j] * x[j]; res += fabs(s - b[i]); }
  printf("det=%.17g x0=%.17g xN=%.17g residual<1e-10=%d hash=%016" PRIx64 "\n", det, x[0], x[N - 1], res < 1e-10, fnv(FNV0, x, sizeof x));
  /* float matrix power iteration */
  float v[N], w[N]; for (int i = 0; i < N; i++) v[i] = 1.0f; float lambda = 0;
  for (int it = 0; it < 50; it++) { float nrm = 0; for (int i = 0; i < N; i++) { float s = 0; for (int j = 0; j < N; j++) s += (float)A[i][j] * v[j]; w[i] = s; nrm += s * s; } nrm = sqrtf(nrm); for (int i = 0; i < N; i++) v[i] = w[i] / nrm; lambda = nrm; }
  printf("lambda=%a v0=%a\n", (double)lambda, (double)v[0]);
  return 0;
}
