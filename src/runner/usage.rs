//! A step's reported metered usage against its module's `pricing.usage` (SPEC §10): every unit priced, every quantity a whole number within `max_units`.
use crate::contract::Pricing;
use crate::records::UsageCharge;
use serde_json::Value;
use std::collections::BTreeMap;

/// The usage a command module reported in result.json (`"usage": {"<unit>": <integer>}`),
/// priced; Err says why the report is refused (the step fails `usage_invalid`). Nothing
/// reported is no usage; a unit reported as 0 is charged nothing and not recorded.
pub fn check(
    pricing: &Pricing,
    reported: Option<&Value>,
) -> Result<BTreeMap<String, UsageCharge>, String> {
    let Some(reported) = reported else {
        return Ok(BTreeMap::new());
    };
    let Some(units) = reported.as_object() else {
        return Err("`usage` in result.json must be an object of unit: whole number".into());
    };
    let mut out = BTreeMap::new();
    for (unit, q) in units {
        let Some(price) = pricing.usage.get(unit) else {
            let priced: Vec<&str> = pricing.usage.keys().map(String::as_str).collect();
            return Err(format!(
                "usage unit '{}' is not priced in module.yml's pricing.usage (priced: {})",
                crate::output::untrusted(unit),
                if priced.is_empty() {
                    "none".to_string()
                } else {
                    priced.join(", ")
                }
            ));
        };
        let Some(quantity) = q.as_u64() else {
            return Err(format!(
                "usage of '{unit}' must be a whole number of units written as an integer (7, not 7.0 or 7e0), not {}",
                crate::output::untrusted(&q.to_string())
            ));
        };
        if quantity > price.max_units {
            return Err(format!(
                "usage of '{unit}' is {quantity} units, above max_units {} of module.yml",
                price.max_units
            ));
        }
        if quantity > 0 {
            out.insert(
                unit.clone(),
                UsageCharge {
                    quantity,
                    credits: price.credits,
                },
            );
        }
    }
    Ok(out)
}

/// What a built-in reports of its natural units: only the units its module prices are kept
/// (a quantity above `max_units` is capped there: the platform, not a module, measured it).
pub fn builtin(pricing: &Pricing, measured: &[(&str, u64)]) -> BTreeMap<String, UsageCharge> {
    measured
        .iter()
        .filter_map(|(unit, quantity)| {
            let price = pricing.usage.get(*unit)?;
            let quantity = (*quantity).min(price.max_units);
            (quantity > 0).then(|| {
                let charge = UsageCharge {
                    quantity,
                    credits: price.credits,
                };
                (unit.to_string(), charge)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::UsagePrice;
    use serde_json::json;

    fn pricing() -> Pricing {
        let mut p = Pricing::default();
        p.usage.insert(
            "pages".into(),
            UsagePrice {
                credits: 2,
                max_units: 10,
            },
        );
        p
    }

    #[test]
    fn whole_numbers_of_priced_units_within_the_maximum_are_charged() {
        let got = check(&pricing(), Some(&json!({"pages": 7}))).unwrap();
        assert_eq!(got["pages"].amount(), 14);
        assert!(check(&pricing(), None).unwrap().is_empty());
        assert!(check(&pricing(), Some(&json!({"pages": 0})))
            .unwrap()
            .is_empty());
        assert_eq!(
            check(&pricing(), Some(&json!({"pages": 10}))).unwrap()["pages"].quantity,
            10
        );
    }

    #[test]
    fn unknown_units_fractions_negatives_and_excess_are_refused() {
        for bad in [
            json!({"pages": 11}),
            json!({"pages": 1.5}),
            json!({"pages": -1}),
            json!({"pages": "7"}),
            json!({"lines": 1}),
            json!([1]),
        ] {
            assert!(check(&pricing(), Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn built_ins_keep_priced_units_only() {
        let got = builtin(&pricing(), &[("pages", 40), ("files", 3)]);
        assert_eq!(got.len(), 1);
        assert_eq!(got["pages"].quantity, 10);
    }
}
