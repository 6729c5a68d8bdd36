//! Calibrating the verification threshold: how well the verification margin separates
//! questions the corpus answers from those it does not, which threshold keeps wrongly declined
//! answerable questions within a budget, and the highest threshold that declines no correctly
//! answered question. Pure functions over eval results.

use serde::Serialize;

/// The share of answerable questions a proposed threshold may decline (the committed
/// `answerable_declined` bound).
pub const DEFAULT_DECLINE_BUDGET: f64 = 0.10;

/// One question as calibration sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    pub answerable: bool,
    /// Declined whatever the threshold: before verification ran, or with no margin to judge.
    pub declined_anyway: bool,
    /// The verification margin, when verification ran.
    pub margin: Option<f32>,
    /// Answered correctly (see [`is_correct`]); only answerable questions can be.
    pub correct: bool,
}

/// Whether an answer counts as correct for calibration: it contains a gold answer, or its short
/// answer scores token F1 >= 0.5 against one.
pub fn is_correct(contains: Option<f64>, f1: Option<f64>) -> bool {
    contains.is_some_and(|c| c >= 1.0) || f1.is_some_and(|f| f >= 0.5)
}

/// What one threshold does: it declines every answer whose margin is below it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThresholdPoint {
    pub threshold: f32,
    pub answerable_declined: f64,
    pub unanswerable_declined: f64,
}

/// The result of a calibration run, for reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Answerable and unanswerable questions with a margin.
    pub answerable_judged: usize,
    pub unanswerable_judged: usize,
    /// Probability that an answerable question's margin exceeds an unanswerable one's (ties
    /// count half); 0.5 is chance.
    pub auc: Option<f64>,
    pub budget: f64,
    /// The highest threshold that declines at most `budget` of answerable questions.
    pub proposed: Option<ThresholdPoint>,
    /// Correctly answered questions with a margin.
    pub correct_judged: usize,
    /// The highest threshold that declines none of them: verification then only overrules
    /// answers judged less likely than every correct one seen. What the shipped thresholds use
    /// (a budget on all answerable questions spends itself on wrong answers, whose declining is
    /// a gain, and a threshold so chosen on one corpus declined many correct answers on
    /// another).
    pub keeps_correct: Option<ThresholdPoint>,
    /// The trade-off, sampled at up to [`CURVE_POINTS`] thresholds from `-inf` up: what each
    /// declines, and the share of correct answers it keeps.
    pub curve: Vec<CurvePoint>,
}

/// How many thresholds a report's curve shows.
pub const CURVE_POINTS: usize = 12;

/// One threshold of the trade-off curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    pub threshold: f32,
    pub answerable_declined: f64,
    pub unanswerable_declined: f64,
    /// Share of the correctly answered questions (with a margin) it keeps.
    pub correct_kept: f64,
}

/// Probability that a value of `pos` exceeds a value of `neg`, ties counting half; `None`
/// when either is empty.
pub fn auc(pos: &[f32], neg: &[f32]) -> Option<f64> {
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for &p in pos {
        for &n in neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (pos.len() * neg.len()) as f64)
}

/// Decline rates at every threshold that changes a decision (each distinct margin), in
/// ascending order, starting with `-inf` (verification declines nothing).
pub fn curve(cases: &[Judged]) -> Vec<ThresholdPoint> {
    let mut thresholds: Vec<f32> = cases.iter().filter_map(|c| c.margin).collect();
    thresholds.push(f32::NEG_INFINITY);
    thresholds.sort_by(f32::total_cmp);
    thresholds.dedup();
    let rate = |answerable: bool, t: f32| -> f64 {
        let group: Vec<&Judged> = cases
            .iter()
            .filter(|c| c.answerable == answerable)
            .collect();
        if group.is_empty() {
            return f64::NAN;
        }
        let declined = group
            .iter()
            .filter(|c| c.declined_anyway || c.margin.is_some_and(|m| m < t))
            .count();
        declined as f64 / group.len() as f64
    };
    thresholds
        .into_iter()
        .map(|t| ThresholdPoint {
            threshold: t,
            answerable_declined: rate(true, t),
            unanswerable_declined: rate(false, t),
        })
        .collect()
}

/// The calibration view of eval results.
pub fn judged_results(results: &[super::runner::QuestionResult]) -> Vec<Judged> {
    results
        .iter()
        .map(|r| Judged {
            answerable: r.kind.is_answerable(),
            declined_anyway: r.abstained && r.verify_margin.is_none(),
            margin: r.verify_margin,
            correct: is_correct(r.contains, r.f1),
        })
        .collect()
}

/// Margins' separation and the highest threshold within `budget` of answerable declines.
pub fn calibrate(cases: &[Judged], budget: f64) -> Calibration {
    let margins = |answerable: bool| -> Vec<f32> {
        cases
            .iter()
            .filter(|c| c.answerable == answerable && !c.declined_anyway)
            .filter_map(|c| c.margin)
            .collect()
    };
    let (pos, neg) = (margins(true), margins(false));
    let points = curve(cases);
    let proposed = points
        .iter()
        .rfind(|p| p.answerable_declined <= budget + 1e-12)
        .copied();
    let correct: Vec<f32> = cases
        .iter()
        .filter(|c| c.correct && !c.declined_anyway)
        .filter_map(|c| c.margin)
        .collect();
    // The curve's thresholds are the margins themselves, and a margin equal to the threshold is
    // kept: the lowest correct margin is the highest threshold that keeps them all.
    let keeps_correct = correct
        .iter()
        .copied()
        .reduce(f32::min)
        .and_then(|lowest| points.iter().rfind(|p| p.threshold <= lowest).copied());
    let kept = |t: f32| {
        if correct.is_empty() {
            return f64::NAN;
        }
        correct.iter().filter(|&&m| m >= t).count() as f64 / correct.len() as f64
    };
    let step = points.len().div_ceil(CURVE_POINTS).max(1);
    let curve = points
        .iter()
        .step_by(step)
        .chain(
            points
                .last()
                .filter(|_| !(points.len() - 1).is_multiple_of(step)),
        )
        .map(|p| CurvePoint {
            threshold: p.threshold,
            answerable_declined: p.answerable_declined,
            unanswerable_declined: p.unanswerable_declined,
            correct_kept: kept(p.threshold),
        })
        .collect();
    Calibration {
        curve,
        answerable_judged: pos.len(),
        unanswerable_judged: neg.len(),
        auc: auc(&pos, &neg),
        budget,
        proposed,
        correct_judged: correct.len(),
        keeps_correct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(answerable: bool, margin: Option<f32>) -> Judged {
        Judged {
            answerable,
            declined_anyway: margin.is_none(),
            margin,
            correct: false,
        }
    }

    fn correct(margin: f32) -> Judged {
        Judged {
            correct: true,
            ..judged(true, Some(margin))
        }
    }

    #[test]
    fn keeping_every_correct_answer_stops_at_the_lowest_correct_margin() {
        let cases = [
            correct(2.0),
            correct(-1.2),
            judged(true, Some(-1.6)),
            judged(false, Some(-2.0)),
            judged(false, Some(-1.2)),
            judged(false, Some(3.0)),
        ];
        let cal = calibrate(&cases, 0.1);
        let k = cal.keeps_correct.unwrap();
        assert_eq!(cal.correct_judged, 2);
        // -1.2 declines the wrong answer (-1.6) and one unanswerable (-2.0); the tie is kept.
        assert_eq!(k.threshold, -1.2);
        assert_eq!(k.answerable_declined, 1.0 / 3.0);
        assert_eq!(k.unanswerable_declined, 1.0 / 3.0);
        // With no correct answer there is nothing to keep, so no proposal.
        assert_eq!(calibrate(&cases[2..], 0.1).keeps_correct, None);
    }

    #[test]
    fn correct_means_contained_or_f1_of_a_half() {
        assert!(is_correct(Some(1.0), Some(0.0)));
        assert!(is_correct(Some(0.0), Some(0.5)));
        assert!(!is_correct(Some(0.0), Some(0.49)));
        assert!(!is_correct(None, None));
    }

    #[test]
    fn auc_counts_wins_and_half_ties() {
        assert_eq!(auc(&[2.0, 3.0], &[1.0]), Some(1.0));
        assert_eq!(auc(&[1.0], &[2.0, 3.0]), Some(0.0));
        assert_eq!(auc(&[1.0], &[1.0]), Some(0.5));
        assert_eq!(auc(&[2.0, 0.0], &[1.0, 1.0]), Some(0.5));
        assert_eq!(auc(&[], &[1.0]), None);
    }

    #[test]
    fn curve_declines_margins_below_each_threshold_plus_those_declined_anyway() {
        let cases = [
            judged(true, Some(2.0)),
            judged(true, Some(-1.0)),
            judged(false, Some(-3.0)),
            judged(false, None),
        ];
        let c = curve(&cases);
        let at = |t: f32| *c.iter().find(|p| p.threshold == t).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].threshold, f32::NEG_INFINITY);
        assert_eq!(at(f32::NEG_INFINITY).answerable_declined, 0.0);
        assert_eq!(at(f32::NEG_INFINITY).unanswerable_declined, 0.5);
        assert_eq!(at(-1.0).unanswerable_declined, 1.0);
        assert_eq!(at(-1.0).answerable_declined, 0.0);
        assert_eq!(at(2.0).answerable_declined, 0.5);
    }

    #[test]
    fn the_proposal_is_the_highest_threshold_within_the_budget() {
        let mut cases: Vec<Judged> = (0..10).map(|i| judged(true, Some(i as f32))).collect();
        cases.extend((0..4).map(|i| judged(false, Some(i as f32 - 3.5))));
        let cal = calibrate(&cases, 0.1);
        let p = cal.proposed.unwrap();
        // Threshold 1.0 declines the answerable margin 0.0 only: 1 of 10.
        assert_eq!(p.threshold, 1.0);
        assert_eq!(p.answerable_declined, 0.1);
        assert_eq!(p.unanswerable_declined, 1.0);
        assert_eq!(cal.auc, Some(1.0));
        assert_eq!((cal.answerable_judged, cal.unanswerable_judged), (10, 4));
        // Answerable questions declined anyway use up the budget.
        let mut strict = cases.clone();
        strict.push(judged(true, None));
        assert_eq!(calibrate(&strict, 0.1).proposed.unwrap().threshold, 0.0);
        strict.push(judged(true, None));
        assert_eq!(calibrate(&strict, 0.1).proposed, None);
    }
}
