#!/usr/bin/env bash
# hack/simulate-aa.sh: the full A/A simulation of the Experiment statistics (tests/aa_simulation.rs, test
# `full_run`), in release mode.
#
# 20 000 simulated A/A experiments (two arms at a 10 % rate, 20 looks of 500 units per arm) decided by naive
# repeated z-tests, the fixed-horizon test, mSPRT and O'Brien-Fleming group-sequential boundaries, all through
# champion::analysis::stats; then 20 000 more with a true +12 % lift (0.100 -> 0.112). Prints each method's
# false-positive rate with its Monte Carlo standard error, then its power, median units per arm at the
# decision and mean looks used, next to the reference figures of the statistics spec. Deterministic (seeded).
# The run takes about a second once built (a first release build takes minutes); the figures go to
# docs/statistics.md by hand, with the date.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo test --release --test aa_simulation -- --ignored --nocapture
