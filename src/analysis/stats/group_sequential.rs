//! Group-sequential tests with Lan–DeMets alpha spending (O'Brien–Fleming-type by default): a planned
//! maximum sample size, a few scheduled looks, and at each look a z boundary that spends part of alpha.
//!
//! A two-sided test at level α is two one-sided tests at `α/2` (the ldbounds / gsDesign convention that
//! reproduces the published tables). With spending `a(t)` per side and information fractions
//! `t_1 < … < t_K ≤ 1`, the boundary `c_k` solves
//! `P_H0(|Z_j| < c_j for j < k, Z_k ≥ c_k) = a(t_k) − a(t_{k−1})`.
//! The first look has the closed form `c_1 = Φ̄⁻¹(a(t_1))`; later looks need the joint law of the
//! looks, computed by recursive numerical integration (Armitage–McPherson–Rowe; Jennison & Turnbull
//! ch. 19) on `√t_k Z_k = √t_{k−1} Z_{k−1} + N(0, t_k − t_{k−1})`: the sub-density of `Z` on the
//! continuation region is carried from look to look on a Simpson grid.
//!
//! Boundaries depend on the looks actually taken and never on later ones, so the boundaries of a history
//! are those of its prefix plus one. A look must be a scheduled analysis: checking more often than the
//! looks used for the boundaries is invalid (OBF bounds for 5 looks re-checked at 20 give 7.6 % false
//! positives). At the last look (maximum duration, or `N ≥ N_max`) the caller sets `t = 1` so that all of
//! alpha is spent. The cost is O(K·m²) for K looks and m grid points, cut by a band (the kernel below
//! 10⁻²² is left out); keep K to a few hundred.

use serde::{Deserialize, Serialize};

use super::Result;
use super::distributions::{normal_isf, normal_pdf, normal_sf};
use super::error::{StatsError, finite, open_unit, positive};

/// The points of the integration grid (odd, for Simpson's rule); 1001 and 8001 agree to 1e-5.
pub const GRID_POINTS: usize = 2001;

/// The default truncation of the boundaries, as `ldbounds`' `ztrun`: no boundary above 8 (an early
/// look that can spend almost nothing gets 8).
pub const DEFAULT_Z_TRUNCATION: f64 = 8.0;

/// Below this the one-sided continuation region is cut off (P(Z < −12) ≈ 2·10⁻³³).
const ONE_SIDED_GRID_FLOOR: f64 = -12.0;

/// Kernel terms further than this many standard deviations away are left out (φ(10) ≈ 7.7·10⁻²³).
const KERNEL_BAND: f64 = 10.0;

/// Less alpha than this left to spend at a look gives it the truncation as its boundary.
const NOTHING_TO_SPEND: f64 = 1e-15;

/// Whether the test rejects on both sides or only for large z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Sides {
    /// Reject when `|Z| ≥ c`; alpha is split evenly between the sides.
    #[default]
    TwoSided,
    /// Reject when `Z ≥ c` (negate z for a lower-is-better effect); no lower boundary.
    OneSided,
}

/// How the alpha of one side is spent over the information fraction `t` (cumulative, `a(1) = α_side`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum AlphaSpending {
    /// O'Brien–Fleming type, `a(t) = 2·Φ̄(z_{1−α_side/2} / √t)`: almost nothing early, nearly the full
    /// alpha at the end.
    #[default]
    OBrienFleming,
    /// Pocock type, `a(t) = α_side·ln(1 + (e − 1)·t)`: evenly spread, more early stops, less power.
    Pocock,
    /// The power family, `a(t) = α_side·t^ρ` (Spotify's default has ρ = 2).
    Power {
        /// The exponent ρ > 0.
        rho: f64,
    },
}

/// A group-sequential design: the level, the sides, the spending function and the truncation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSequentialDesign {
    /// The overall level α (two-sided: both sides together).
    pub alpha: f64,
    /// One or two sides.
    pub sides: Sides,
    /// The spending function.
    pub spending: AlphaSpending,
    /// No boundary above this ([`DEFAULT_Z_TRUNCATION`]).
    pub z_truncation: f64,
}

impl Default for GroupSequentialDesign {
    /// Two-sided O'Brien–Fleming at α = 0.05, truncated at 8.
    fn default() -> Self {
        GroupSequentialDesign {
            alpha: 0.05,
            sides: Sides::TwoSided,
            spending: AlphaSpending::OBrienFleming,
            z_truncation: DEFAULT_Z_TRUNCATION,
        }
    }
}

impl GroupSequentialDesign {
    /// Checks alpha in (0, 1), ρ > 0 and a truncation in (0, 40].
    pub fn validate(&self) -> Result<()> {
        open_unit("alpha", self.alpha)?;
        if let AlphaSpending::Power { rho } = self.spending {
            positive("spending exponent rho", rho)?;
        }
        let z = self.z_truncation;
        if !(z.is_finite() && z > 0.0 && z <= 40.0) {
            return Err(StatsError::OutOfRange { what: "z truncation", value: z, range: "(0, 40]" });
        }
        Ok(())
    }

    /// The alpha of one side: `α/2` two-sided, `α` one-sided.
    pub fn alpha_per_side(&self) -> f64 {
        match self.sides {
            Sides::TwoSided => self.alpha / 2.0,
            Sides::OneSided => self.alpha,
        }
    }

    /// The cumulative alpha of one side spent by information fraction `t` in (0, 1].
    pub fn spent(&self, t: f64) -> f64 {
        let a = self.alpha_per_side();
        match self.spending {
            AlphaSpending::OBrienFleming => 2.0 * normal_sf(normal_isf(a / 2.0) / t.sqrt()),
            AlphaSpending::Pocock => a * (1.0 + (std::f64::consts::E - 1.0) * t).ln(),
            AlphaSpending::Power { rho } => a * t.powf(rho),
        }
    }

    /// The nominal level of a boundary `c`: `2·Φ̄(c)` two-sided, `Φ̄(c)` one-sided.
    fn nominal_alpha(&self, c: f64) -> f64 {
        match self.sides {
            Sides::TwoSided => 2.0 * normal_sf(c),
            Sides::OneSided => normal_sf(c),
        }
    }

    fn grid_floor(&self, c: f64) -> f64 {
        match self.sides {
            Sides::TwoSided => -c,
            Sides::OneSided => ONE_SIDED_GRID_FLOOR.min(-c),
        }
    }
}

/// The boundary of one look.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookBoundary {
    /// The information fraction `t` of the look.
    pub information_fraction: f64,
    /// The z boundary `c`.
    pub z_bound: f64,
    /// The alpha of one side spent up to and including this look, `a(t)`.
    pub cumulative_alpha: f64,
    /// The nominal p-value of the boundary (`2·Φ̄(c)` two-sided): "the sequentially adjusted alpha".
    pub nominal_alpha: f64,
}

/// One look taken: its information fraction and its z statistic (`θ̂ / SE`, unpooled; Welch's t as z).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Look {
    /// `t = min(N / N_max, 1)`; 1 at the last look.
    pub information_fraction: f64,
    /// The z statistic.
    pub z: f64,
}

/// The first boundary a look history crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Crossing {
    /// The look, 1-based.
    pub look: usize,
    /// Whether z crossed the upper boundary (the effect is positive); false for the lower one.
    pub upper: bool,
}

/// Whether and where a look history crossed its boundaries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BoundaryCheck {
    /// The boundaries of the looks taken.
    pub bounds: Vec<LookBoundary>,
    /// The first crossing, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossed: Option<Crossing>,
}

/// The boundaries for looks at `information_fractions` (strictly increasing, in (0, 1]), by recursive
/// numerical integration.
pub fn group_sequential_bounds(
    information_fractions: &[f64],
    design: &GroupSequentialDesign,
) -> Result<Vec<LookBoundary>> {
    design.validate()?;
    check_fractions(information_fractions)?;
    let ztrun = design.z_truncation;
    let mut bounds = Vec::with_capacity(information_fractions.len());
    let mut grid = Grid::empty();
    let mut spent_before = 0.0;
    for (k, &t) in information_fractions.iter().enumerate() {
        let spent = design.spent(t);
        let increment = spent - spent_before;
        let c = if k == 0 {
            // the first look in closed form
            let c = if increment > 0.0 { normal_isf(increment).min(ztrun) } else { ztrun };
            grid = Grid::first(design.grid_floor(c), c);
            c
        } else {
            let step = Step::new(information_fractions[k - 1], t);
            let c = if increment <= NOTHING_TO_SPEND || grid.upper_crossing(&step, ztrun) >= increment {
                ztrun
            } else {
                solve_decreasing(|c| grid.upper_crossing(&step, c) - increment, 0.0, ztrun)
            };
            grid = grid.advance(&step, design.grid_floor(c), c);
            c
        };
        bounds.push(LookBoundary {
            information_fraction: t,
            z_bound: c,
            cumulative_alpha: spent,
            nominal_alpha: design.nominal_alpha(c),
        });
        spent_before = spent;
    }
    Ok(bounds)
}

/// The closed-form, conservative alternative ("Bonferroni spending", a union bound): each look tested at
/// the alpha it spends, `c_k = Φ̄⁻¹(a(t_k) − a(t_{k−1}))`, truncated. Valid for any correlation, but it
/// loses power (K = 5 OBF: a final bound of 2.233 instead of 2.031); a fallback only.
pub fn bonferroni_spending_bounds(
    information_fractions: &[f64],
    design: &GroupSequentialDesign,
) -> Result<Vec<LookBoundary>> {
    design.validate()?;
    check_fractions(information_fractions)?;
    let mut spent_before = 0.0;
    Ok(information_fractions
        .iter()
        .map(|&t| {
            let spent = design.spent(t);
            let increment = spent - spent_before;
            spent_before = spent;
            let c = if increment > 0.0 { normal_isf(increment).min(design.z_truncation) } else { design.z_truncation };
            LookBoundary {
                information_fraction: t,
                z_bound: c,
                cumulative_alpha: spent,
                nominal_alpha: design.nominal_alpha(c),
            }
        })
        .collect())
}

/// The first look whose z reaches its boundary (`|z| ≥ c` two-sided, `z ≥ c` one-sided), given
/// boundaries computed once (e.g. for a planned schedule). `z_values` may be shorter than `bounds`.
pub fn first_crossing(z_values: &[f64], bounds: &[LookBoundary], sides: Sides) -> Result<Option<Crossing>> {
    if z_values.len() > bounds.len() {
        return Err(StatsError::LengthMismatch {
            what: "z values and boundaries",
            left: z_values.len(),
            right: bounds.len(),
        });
    }
    for (k, (&z, bound)) in z_values.iter().zip(bounds).enumerate() {
        let z = finite("z", z)?;
        let c = bound.z_bound;
        let crossed = match sides {
            Sides::TwoSided => z.abs() >= c,
            Sides::OneSided => z >= c,
        };
        if crossed {
            return Ok(Some(Crossing { look: k + 1, upper: z > 0.0 }));
        }
    }
    Ok(None)
}

/// Computes the boundaries of a look history and says whether, and where, it crossed one.
pub fn check_boundary(looks: &[Look], design: &GroupSequentialDesign) -> Result<BoundaryCheck> {
    let fractions: Vec<f64> = looks.iter().map(|l| l.information_fraction).collect();
    let z_values: Vec<f64> = looks.iter().map(|l| l.z).collect();
    for &z in &z_values {
        finite("z", z)?;
    }
    let bounds = group_sequential_bounds(&fractions, design)?;
    let crossed = first_crossing(&z_values, &bounds, design.sides)?;
    Ok(BoundaryCheck { bounds, crossed })
}

fn check_fractions(fractions: &[f64]) -> Result<()> {
    if fractions.is_empty() {
        return Err(StatsError::Empty { what: "information fractions" });
    }
    let mut previous = 0.0;
    for &t in fractions {
        let t = finite("information fraction", t)?;
        if !(t > 0.0 && t <= 1.0) {
            return Err(StatsError::OutOfRange { what: "information fraction", value: t, range: "(0, 1]" });
        }
        if t <= previous {
            return Err(StatsError::NotIncreasing { previous, next: t });
        }
        previous = t;
    }
    Ok(())
}

/// The move from one look to the next: `√t_k Z_k = √t_{k−1} Z_{k−1} + N(0, t_k − t_{k−1})`.
struct Step {
    sqrt_previous: f64,
    sqrt_current: f64,
    sd: f64,
}

impl Step {
    fn new(previous: f64, current: f64) -> Self {
        Step { sqrt_previous: previous.sqrt(), sqrt_current: current.sqrt(), sd: (current - previous).sqrt() }
    }
}

/// The sub-density of Z at the last look on its continuation region, on an evenly spaced grid, with the
/// Simpson weights folded in: `mass[j] = w_j · f(x_j)`.
struct Grid {
    lower: f64,
    spacing: f64,
    mass: Vec<f64>,
}

impl Grid {
    fn empty() -> Self {
        Grid { lower: 0.0, spacing: 0.0, mass: Vec::new() }
    }

    /// The first look: Z_1 is standard normal, kept on `[lower, upper]`.
    fn first(lower: f64, upper: f64) -> Self {
        Self::from_density(lower, upper, normal_pdf)
    }

    fn from_density(lower: f64, upper: f64, density: impl Fn(f64) -> f64) -> Self {
        let m = GRID_POINTS;
        let spacing = (upper - lower) / (m - 1) as f64;
        let mass = (0..m)
            .map(|i| {
                let x = lower + spacing * i as f64;
                simpson_weight(i, m, spacing) * density(x)
            })
            .collect();
        Grid { lower, spacing, mass }
    }

    fn x(&self, j: usize) -> f64 {
        self.lower + self.spacing * j as f64
    }

    /// P(no crossing so far, Z_k ≥ c) = Σ_j w_j f(x_j) · Φ̄((c·√t_k − x_j·√t_{k−1}) / √(t_k − t_{k−1})).
    fn upper_crossing(&self, step: &Step, c: f64) -> f64 {
        let target = c * step.sqrt_current;
        self.mass
            .iter()
            .enumerate()
            .map(|(j, &mass)| mass * normal_sf((target - self.x(j) * step.sqrt_previous) / step.sd))
            .sum()
    }

    /// The sub-density of Z_k on `[lower, upper]`:
    /// `f_k(y) = Σ_j w_j f(x_j) · √t_k/s · φ((y·√t_k − x_j·√t_{k−1}) / s)`.
    fn advance(&self, step: &Step, lower: f64, upper: f64) -> Grid {
        let scale = step.sqrt_current / step.sd;
        let band = KERNEL_BAND * step.sd / step.sqrt_previous;
        let last = self.mass.len().saturating_sub(1);
        Self::from_density(lower, upper, |y| {
            // only the x_j with |y·√t_k − x_j·√t_{k−1}| ≤ band·s contribute
            let centre = y * step.sqrt_current / step.sqrt_previous;
            let from = ((centre - band - self.lower) / self.spacing).ceil().max(0.0) as usize;
            let to = (((centre + band - self.lower) / self.spacing).floor().max(-1.0) + 1.0) as usize;
            let to = to.min(last + 1);
            (from..to)
                .map(|j| self.mass[j] * normal_pdf((y * step.sqrt_current - self.x(j) * step.sqrt_previous) / step.sd))
                .sum::<f64>()
                * scale
        })
    }
}

/// Simpson's weights `h/3 · [1, 4, 2, 4, …, 2, 4, 1]` on `m` (odd) points.
fn simpson_weight(i: usize, m: usize, spacing: f64) -> f64 {
    let w = if i == 0 || i == m - 1 {
        1.0
    } else if i % 2 == 1 {
        4.0
    } else {
        2.0
    };
    w * spacing / 3.0
}

/// The root of a decreasing `f` on `[lo, hi]` with `f(lo) > 0 > f(hi)`, by bisection to 1e−12.
fn solve_decreasing(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    while hi - lo > 1e-12 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obf() -> GroupSequentialDesign {
        GroupSequentialDesign::default()
    }

    #[test]
    fn bounds_of_a_prefix_are_a_prefix_of_the_bounds() {
        let t = [0.15, 0.3, 0.55, 0.8, 1.0];
        let all = group_sequential_bounds(&t, &obf()).unwrap();
        for k in 1..t.len() {
            let prefix = group_sequential_bounds(&t[..k], &obf()).unwrap();
            assert_eq!(prefix[..], all[..k]);
        }
    }

    #[test]
    fn one_look_at_the_end_is_the_fixed_horizon_test() {
        for (sides, want) in [(Sides::TwoSided, 1.959963985), (Sides::OneSided, 1.644853627)] {
            for spending in [AlphaSpending::OBrienFleming, AlphaSpending::Pocock, AlphaSpending::Power { rho: 2.0 }] {
                let design = GroupSequentialDesign { sides, spending, ..obf() };
                let c = group_sequential_bounds(&[1.0], &design).unwrap()[0].z_bound;
                assert!((c - want).abs() < 1e-8, "{design:?}: {c}");
            }
        }
    }

    #[test]
    fn pocock_bounds_are_flatter_than_obf() {
        let t: Vec<f64> = (1..=5).map(|k| f64::from(k) / 5.0).collect();
        let pocock = GroupSequentialDesign { spending: AlphaSpending::Pocock, ..obf() };
        let p = group_sequential_bounds(&t, &pocock).unwrap();
        let o = group_sequential_bounds(&t, &obf()).unwrap();
        assert!(p[0].z_bound < o[0].z_bound && p[4].z_bound > o[4].z_bound, "{p:?} {o:?}");
        // Pocock-type spending keeps every bound near 2.4 for K = 5
        for b in &p {
            assert!((b.z_bound - 2.41).abs() < 0.06, "{b:?}");
        }
    }

    #[test]
    fn nothing_to_spend_gives_the_truncation() {
        let b = group_sequential_bounds(&[0.001, 0.002, 1.0], &obf()).unwrap();
        assert_eq!(b[0].z_bound, DEFAULT_Z_TRUNCATION);
        assert_eq!(b[1].z_bound, DEFAULT_Z_TRUNCATION);
        assert!((b[2].z_bound - 1.959964).abs() < 1e-5, "{b:?}");
    }

    #[test]
    fn a_history_is_checked_against_its_bounds() {
        let design = obf();
        let looks = |zs: &[f64]| -> Vec<Look> {
            zs.iter().enumerate().map(|(k, &z)| Look { information_fraction: (k + 1) as f64 / 5.0, z }).collect()
        };
        // bounds 4.877, 3.357, 2.680, 2.290, 2.031
        let cases: [(&[f64], Option<Crossing>); 5] = [
            (&[1.0, 2.0, 2.6], None),
            (&[1.0, 2.0, 2.7], Some(Crossing { look: 3, upper: true })),
            (&[-4.9], Some(Crossing { look: 1, upper: false })),
            (&[0.5, -3.4, 4.0], Some(Crossing { look: 2, upper: false })),
            (&[1.0, 1.0, 1.0, 1.0, 2.03], None),
        ];
        for (zs, want) in cases {
            let check = check_boundary(&looks(zs), &design).unwrap();
            assert_eq!(check.crossed, want, "{zs:?}");
            assert_eq!(check.bounds.len(), zs.len());
        }
        let one_sided = GroupSequentialDesign { sides: Sides::OneSided, ..obf() };
        assert_eq!(check_boundary(&looks(&[-9.0]), &one_sided).unwrap().crossed, None);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let d = obf();
        assert_eq!(group_sequential_bounds(&[], &d), Err(StatsError::Empty { what: "information fractions" }));
        assert_eq!(
            group_sequential_bounds(&[0.5, 0.5], &d),
            Err(StatsError::NotIncreasing { previous: 0.5, next: 0.5 })
        );
        assert!(group_sequential_bounds(&[0.5, 1.2], &d).is_err());
        assert!(group_sequential_bounds(&[0.0, 1.0], &d).is_err());
        assert!(group_sequential_bounds(&[f64::NAN], &d).is_err());
        assert!(group_sequential_bounds(&[1.0], &GroupSequentialDesign { alpha: 0.0, ..d }).is_err());
        assert!(group_sequential_bounds(&[1.0], &GroupSequentialDesign { z_truncation: f64::NAN, ..d }).is_err());
        let power = GroupSequentialDesign { spending: AlphaSpending::Power { rho: -1.0 }, ..d };
        assert!(group_sequential_bounds(&[1.0], &power).is_err());
        let looks = [Look { information_fraction: 1.0, z: f64::NAN }];
        assert_eq!(check_boundary(&looks, &d), Err(StatsError::NotFinite { what: "z" }));
        let bounds = group_sequential_bounds(&[1.0], &d).unwrap();
        assert!(first_crossing(&[1.0, 2.0], &bounds, Sides::TwoSided).is_err());
    }
}
