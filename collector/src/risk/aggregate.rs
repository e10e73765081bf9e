//! Aggregation: lights are the worst of their findings; a 0–100 score stands beside each.
//!
//! # Score
//! For a set of findings (a service's, a device's):
//!
//! `score = min(cap(light), max(0, 100 − 40·reds − 15·yellows − 10·greys))`
//!
//! with `cap` = 100 for green, 89 for grey, 79 for yellow, 49 for red, where `light` is the
//! worst finding. The cap keeps the score from contradicting the light (a red device never
//! scores above 49, however few findings it has); the penalties rank devices of the same light
//! by how much is wrong. A tenant's score is the mean of its device scores, capped by the
//! tenant's light the same way; a tenant without devices is grey with score 0.
//!
//! Grey (not enough data) ranks above green, so a device or tenant we cannot judge never shows
//! as green.

use serde::Serialize;

use super::{Finding, Light, SERVICES};

/// Light of a set of findings: the worst, green when there are none.
pub fn light_of(findings: &[Finding]) -> Light {
    findings.iter().map(|f| f.level).max().unwrap_or(Light::Green)
}

fn cap(light: Light) -> u32 {
    match light {
        Light::Red => 49,
        Light::Yellow => 79,
        Light::Grey => 89,
        Light::Green => 100,
    }
}

/// Score of a set of findings; see the module docs for the formula.
pub fn score_of(findings: &[Finding]) -> u8 {
    let penalty: u32 = findings
        .iter()
        .map(|f| match f.level {
            Light::Red => 40,
            Light::Yellow => 15,
            Light::Grey => 10,
            Light::Green => 0,
        })
        .sum();
    // At most 100 after `min`, so the cast cannot truncate.
    100u32.saturating_sub(penalty).min(cap(light_of(findings))) as u8
}

/// Tenant score: the mean of its device scores (100 with no devices), capped by `light`.
pub fn tenant_score(device_scores: &[u8], light: Light) -> u8 {
    if device_scores.is_empty() {
        return 100;
    }
    let mean = device_scores.iter().map(|s| u32::from(*s)).sum::<u32>() / device_scores.len() as u32;
    mean.min(cap(light)) as u8
}

/// A service's light and score (the report's "lights per service").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceLight {
    /// Service name, one of [`SERVICES`].
    pub service: &'static str,
    /// Worst finding of the service; green when none.
    pub light: Light,
    /// [`score_of`] over the service's findings.
    pub score: u8,
    /// How many findings the service has.
    pub findings: usize,
}

/// Light and score of every service over `findings` (of one device or a whole tenant), in
/// [`SERVICES`] order. A service without findings is green; missing data shows as the grey
/// `coverage` service and in the device light, which always takes every service into account.
pub fn service_lights(findings: &[Finding]) -> Vec<ServiceLight> {
    SERVICES
        .iter()
        .map(|service| {
            let own: Vec<Finding> = findings.iter().filter(|f| f.service() == *service).cloned().collect();
            ServiceLight { service, light: light_of(&own), score: score_of(&own), findings: own.len() }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn f(service: &str, level: Light) -> Finding {
        let rule = crate::risk::Rule::ALL.into_iter().find(|r| r.service() == service).unwrap();
        Finding {
            rule,
            device: Some("fw".into()),
            level,
            id: String::new(),
            subject: None,
            facts: crate::risk::Facts::NeverSeen,
            window_ms: [0, 1],
            change: None,
        }
    }

    #[test]
    fn the_light_is_the_worst_and_grey_never_hides_as_green() {
        assert_eq!(light_of(&[]), Light::Green);
        assert_eq!(light_of(&[f("coverage", Light::Grey)]), Light::Grey);
        assert_eq!(light_of(&[f("coverage", Light::Grey), f("performance", Light::Yellow)]), Light::Yellow);
        assert_eq!(light_of(&[f("license", Light::Red), f("performance", Light::Yellow)]), Light::Red);
        assert!(Light::Green < Light::Grey && Light::Grey < Light::Yellow && Light::Yellow < Light::Red);
    }

    #[test]
    fn score_penalties_and_caps() {
        assert_eq!(score_of(&[]), 100);
        assert_eq!(score_of(&[f("coverage", Light::Grey)]), 89); // 90, capped at 89
        assert_eq!(score_of(&[f("coverage", Light::Grey), f("coverage", Light::Grey)]), 80);
        assert_eq!(score_of(&[f("performance", Light::Yellow)]), 79); // 85, capped
        assert_eq!(score_of(&[f("performance", Light::Yellow), f("performance", Light::Yellow)]), 70);
        assert_eq!(score_of(&[f("license", Light::Red)]), 49); // 60, capped
        assert_eq!(score_of(&[f("license", Light::Red), f("threats", Light::Red)]), 20);
        assert_eq!(score_of(&[f("license", Light::Red), f("license", Light::Red), f("license", Light::Red)]), 0); // floored
    }

    #[test]
    fn tenant_score_is_the_capped_mean() {
        assert_eq!(tenant_score(&[100, 100], Light::Green), 100);
        assert_eq!(tenant_score(&[100, 60], Light::Yellow), 79);
        assert_eq!(tenant_score(&[100, 20], Light::Red), 49);
        assert_eq!(tenant_score(&[30, 20], Light::Red), 25);
        assert_eq!(tenant_score(&[], Light::Green), 100);
    }

    #[test]
    fn lights_per_service() {
        let s = service_lights(&[
            f("license", Light::Red),
            f("performance", Light::Yellow),
            f("performance", Light::Yellow),
            f("coverage", Light::Grey),
        ]);
        assert_eq!(s.len(), SERVICES.len());
        let get = |name: &str| s.iter().find(|x| x.service == name).map(|x| (x.light, x.score, x.findings));
        assert_eq!(get("license"), Some((Light::Red, 49, 1)));
        assert_eq!(get("performance"), Some((Light::Yellow, 70, 2)));
        assert_eq!(get("coverage"), Some((Light::Grey, 89, 1)));
        assert_eq!(get("threats"), Some((Light::Green, 100, 0)));
    }
}
