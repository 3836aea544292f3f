/*
 * Worst-case bounds through a lowered program, by interval arithmetic from a box of inputs (one interval per
 * input value). CKKS computes modulo Q_l: a value whose |value| x scale reaches Q_l / 2 wraps around, and the
 * wrap spreads to every slot of its ciphertext at decryption. The plan (ckks_plan.c) checks every stage's peak
 * against the modulus left at its level before any key is made, and refuses what it cannot guarantee.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ml/ml_internal.h"
#include "veil/ckks.h"
#include "veil/circuits.h"

#define GRID 2048 /* points at which a polynomial's range over an interval is sampled */

/* A polynomial stage at x: the Chebyshev series over [lo, hi], or the power series. */
static double poly_at(const veil_stage *s, double x)
{
    if (s->kind == VEIL_STAGE_POWER) {
        double r = 0;
        for (size_t k = s->degree + 1; k-- > 0;) r = r * x + s->coeffs[k];
        return r;
    }
    const double t = (2 * x - (s->lo + s->hi)) / (s->hi - s->lo);
    double t0 = 1, t1 = t, r = s->coeffs[0] + (s->degree >= 1 ? s->coeffs[1] * t : 0);
    for (size_t k = 2; k <= s->degree; k++) {
        const double t2 = 2 * t * t1 - t0;
        r += s->coeffs[k] * t2;
        t0 = t1;
        t1 = t2;
    }
    return r;
}

static double abs_sum(const double *c, size_t n)
{
    double s = 0;
    for (size_t k = 0; k < n; k++) s += fabs(c[k]);
    return s;
}

/*
 * A bound on |p'| over [u, v]. Chebyshev: Markov's inequality, |p'(t)| <= d^2 max|p| <= d^2 sum |c_k| on
 * [-1, 1], times dt/dx = 2 / (hi - lo). Power series: sum k |c_k| M^(k-1), M = max(|u|, |v|).
 */
static double slope_bound(const veil_stage *s, double u, double v)
{
    if (s->kind == VEIL_STAGE_CHEBYSHEV) {
        const double d = (double)s->degree;
        return d * d * abs_sum(s->coeffs, s->degree + 1) * 2 / (s->hi - s->lo);
    }
    const double m = fmax(fabs(u), fabs(v));
    double r = 0, mk = 1;
    for (size_t k = 1; k <= s->degree; k++, mk *= m) r += (double)k * fabs(s->coeffs[k]) * mk;
    return r;
}

/* The range of a polynomial stage over [u, v]: sampled on a grid, widened by the slope over half a step. */
static void poly_range(const veil_stage *s, double u, double v, double *lo, double *hi)
{
    double mn = INFINITY, mx = -INFINITY;
    for (int i = 0; i <= GRID; i++) {
        const double y = poly_at(s, u + (v - u) * i / GRID);
        mn = fmin(mn, y);
        mx = fmax(mx, y);
    }
    const double slack = slope_bound(s, u, v) * (v - u) / (2.0 * GRID);
    *lo = mn - slack;
    *hi = mx + slack;
}

/*
 * The largest |value| inside a polynomial stage's evaluation: the input and its map onto [-1, 1], the
 * Chebyshev polynomials T_k (within [-1, 1] there), and the partial sums of the baby-step giant-step
 * division, each at most 2^(levels) sum |c_k| (each division by T_D at most doubles the l1 norm of the
 * coefficients). Power series: x^2 and every partial sum.
 */
static double poly_peak(const veil_stage *s, double m_in)
{
    const double c1 = abs_sum(s->coeffs, s->degree + 1);
    if (s->kind == VEIL_STAGE_POWER) {
        double r = 0, mk = 1;
        for (size_t k = 0; k <= s->degree; k++, mk *= m_in) r += fabs(s->coeffs[k]) * mk;
        return fmax(fmax(r, m_in * m_in), m_in);
    }
    const double map = (2 * m_in + fabs(s->lo + s->hi)) / (s->hi - s->lo);
    const double tree = ldexp(c1, (int)veil_ckks_chebyshev_depth(s->degree));
    return fmax(fmax(m_in, map), fmax(tree, 1.0));
}

static double magnitude(double lo, double hi) { return fmax(fabs(lo), fabs(hi)); }

/* An affine stage: y_i = b_i + sum_j w_ij x_j over the box, and the largest partial sum (the latency
 * packing's slots hold partial sums of rows, which sum |w_ij| |x_j| bounds). */
static double affine_bounds(const veil_stage *s, const double *lo, const double *hi, double *ylo, double *yhi)
{
    double peak = 0;
    for (size_t r = 0; r < s->out_width; r++) {
        const double *w = s->w + r * s->in_width;
        double a = s->b[r], b = s->b[r], mag = fabs(s->b[r]);
        for (size_t c = 0; c < s->in_width; c++) {
            if (w[c] == 0) continue;
            const double p = w[c] * lo[c], q = w[c] * hi[c];
            a += fmin(p, q);
            b += fmax(p, q);
            mag += fabs(w[c]) * magnitude(lo[c], hi[c]);
        }
        ylo[r] = a;
        yhi[r] = b;
        peak = fmax(peak, mag);
    }
    return peak;
}

/* Tolerance on an approximation's range: its input may touch the ends up to rounding. */
static int within(double lo, double hi, double a, double b)
{
    const double eps = 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
    return lo >= a - eps && hi <= b + eps;
}

veil_status veil_program_bounds(const veil_program *p, size_t upto, const double *in_lo, const double *in_hi,
                                int zero_slots, double *out_lo, double *out_hi, double *peak, veil_error *err)
{
    size_t maxw = p->in_width;
    for (size_t i = 0; i < p->n_stages; i++) maxw = p->stages[i].out_width > maxw ? p->stages[i].out_width : maxw;
    double *lo = malloc(maxw * sizeof *lo), *hi = malloc(maxw * sizeof *hi);
    double *nlo = malloc(maxw * sizeof *nlo), *nhi = malloc(maxw * sizeof *nhi);
    veil_status st = VEIL_OK;
    if (!lo || !hi || !nlo || !nhi) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bounds");
    size_t w = p->in_width;
    for (size_t i = 0; i < w; i++) {
        lo[i] = in_lo[i];
        hi[i] = in_hi[i];
        if (!(lo[i] <= hi[i]) || !isfinite(lo[i]) || !isfinite(hi[i]))
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "bounds: input %zu's range [%g, %g] is empty or not finite", i + 1,
                      lo[i], hi[i]);
    }
    /*
     * The latency packing's other lanes: after its first affine stage they hold partial sums of up to two
     * rows (at most twice the stage's largest partial sum), which the squares before the next affine stage
     * square in turn (veil_latency_lanes puts no polynomial there). Taken after every affine stage: at worst
     * a bit or two too careful.
     */
    double lanes = 0;
    for (size_t si = 0; si < upto && si < p->n_stages; si++) {
        const veil_stage *s = &p->stages[si];
        double top = 0;
        if (s->kind == VEIL_STAGE_AFFINE) {
            top = affine_bounds(s, lo, hi, nlo, nhi);
            lanes = zero_slots ? 2 * top : 0;
        } else if (s->kind == VEIL_STAGE_SQUARE) {
            lanes *= lanes;
            top = lanes;
        } else {
            lanes = 0;
        }
        if (s->kind != VEIL_STAGE_AFFINE) {
            for (size_t k = 0; k < w; k++) {
                double a = lo[k], b = hi[k];
                if (zero_slots) { /* unused slots of the latency packing hold 0 */
                    a = fmin(a, 0);
                    b = fmax(b, 0);
                }
                const double m = magnitude(a, b);
                if (s->kind == VEIL_STAGE_SQUARE) {
                    nlo[k] = a <= 0 && b >= 0 ? 0 : fmin(a * a, b * b);
                    nhi[k] = fmax(a * a, b * b);
                    top = fmax(top, m * m);
                    continue;
                }
                /* a polynomial approximates its activation over its range only (a server-side sigmoid's cubic
                 * over [-7.8, 7.8]) */
                const int ranged = s->kind == VEIL_STAGE_CHEBYSHEV || s->hi > s->lo;
                if (ranged && !within(a, b, s->lo, s->hi))
                    VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "layer %zu (%s): on the inputs' range its input can reach "
                              "[%.6g, %.6g], outside the approximation's range [%.6g, %.6g], where the polynomial "
                              "is no longer the activation", si + 1, s->what ? s->what : "?", a, b, s->lo, s->hi);
                poly_range(s, a, b, &nlo[k], &nhi[k]);
                top = fmax(top, fmax(poly_peak(s, m), magnitude(nlo[k], nhi[k])));
            }
        }
        if (peak) peak[si] = top;
        w = s->out_width;
        double *t = lo;
        lo = nlo;
        nlo = t;
        t = hi;
        hi = nhi;
        nhi = t;
    }
    for (size_t i = 0; i < w; i++) {
        if (!isfinite(lo[i]) || !isfinite(hi[i]))
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "bounds: a value of the model is unbounded on the inputs' range");
        if (out_lo) out_lo[i] = lo[i];
        if (out_hi) out_hi[i] = hi[i];
    }
done:
    free(lo);
    free(hi);
    free(nlo);
    free(nhi);
    return st;
}
