//! Fills in the `{{placeholder}}`s of a metric query.
//!
//! One scanner, [`parse`], serves validation ([`check_placeholders`], re-exported by
//! [`crate::validation`]) and measurement ([`render`]); which placeholders a kind offers is decided by its
//! validation (`QUERY_PLACEHOLDERS`), so a query that passed validation renders as long as the caller sets
//! every value that kind promises.

use kube::ResourceExt;

use crate::api::Duration;
use crate::api::ModelDeployment;
use crate::api::model_deployment::RevisionRef;
use crate::resources::service;

/// The values a query template may refer to; `None` means "not known here", and a template that uses it
/// does not render.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateVars {
    /// `{{namespace}}`: the object's namespace.
    pub namespace: Option<String>,
    /// `{{name}}`: the object's name (the ModelDeployment's, for experiments too).
    pub name: Option<String>,
    /// `{{variant}}`: the variant being measured, e.g. `stable`, `candidate` or an experiment variant.
    pub variant: Option<String>,
    /// `{{version}}`: the model version being measured.
    pub version: Option<String>,
    /// `{{revision}}`: the revision hash being measured, as in the `champion.ml/revision` label of its pods
    /// (a pod scrape that maps pod labels makes it the series label `champion_ml_revision`).
    pub revision: Option<String>,
    /// `{{service}}`: the name of the Service in front of the variant being measured (`<name>-candidate`
    /// for a rollout's candidate), as mesh metrics label it (`destination_service_name` in Istio).
    pub service: Option<String>,
    /// `{{interval}}`: the analysis interval as a Prometheus duration, e.g. `1m`.
    pub interval: Option<String>,
    /// `{{window}}`: the experiment's window so far as a Prometheus duration, e.g. `3h`.
    pub window: Option<String>,
}

impl TemplateVars {
    /// The placeholder names this struct knows, in the order of its fields.
    pub const NAMES: &'static [&'static str] =
        &["namespace", "name", "variant", "version", "revision", "service", "interval", "window"];

    /// The value of placeholder `name`: `None` for an unknown name, `Some(None)` for a known one without
    /// a value.
    fn get(&self, name: &str) -> Option<Option<&str>> {
        let v = match name {
            "namespace" => &self.namespace,
            "name" => &self.name,
            "variant" => &self.variant,
            "version" => &self.version,
            "revision" => &self.revision,
            "service" => &self.service,
            "interval" => &self.interval,
            "window" => &self.window,
            _ => return None,
        };
        Some(v.as_deref())
    }
}

/// The values a ModelDeployment's metric queries are filled with: they select the candidate's series.
///
/// `{{revision}}` is the candidate's revision hash (`None`, so the query does not render and the
/// measurement is an error that holds the rollout, when the status has no hash yet), `{{service}}` the
/// candidate's Service, `{{variant}}` is `candidate`, and `{{interval}}` the analysis interval (default
/// `1m`).
pub fn candidate_vars(
    md: &ModelDeployment,
    candidate: Option<&RevisionRef>,
    interval: Option<&Duration>,
) -> TemplateVars {
    TemplateVars {
        namespace: md.namespace(),
        name: Some(md.name_any()),
        variant: Some(CANDIDATE.into()),
        version: candidate.map(|c| c.version.clone()),
        revision: candidate.and_then(|c| c.hash.clone()),
        service: Some(service::name(md, CANDIDATE)),
        interval: Some(interval.map(ToString::to_string).unwrap_or_else(|| DEFAULT_INTERVAL.into())),
        window: None,
    }
}

/// The variant a rollout's analysis measures.
const CANDIDATE: &str = "candidate";

/// `{{interval}}` when the spec sets none.
const DEFAULT_INTERVAL: &str = "1m";

/// One piece of a query template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text copied as it is.
    Text(&'a str),
    /// A `{{placeholder}}`'s name, spaces inside the braces trimmed.
    Placeholder(&'a str),
}

/// Splits a query template into text and placeholders: the one scanner behind both
/// [`check_placeholders`] (validation) and [`render`] (measurement), so that what validation accepts
/// renders. Errors, as a sentence: an unclosed `{{`, or a `}}` without its `{{`.
pub fn parse(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let (before, after) = (&rest[..start], &rest[start + 2..]);
        if before.contains("}}") {
            return Err(UNMATCHED_CLOSE.into());
        }
        let end = after.find("}}").ok_or_else(|| "a {{ placeholder in the query is not closed with }}".to_string())?;
        if !before.is_empty() {
            pieces.push(Piece::Text(before));
        }
        pieces.push(Piece::Placeholder(after[..end].trim()));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err(UNMATCHED_CLOSE.into());
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// The error of a `}}` without its `{{`.
const UNMATCHED_CLOSE: &str = "a }} in the query has no matching {{";

/// The error of a placeholder that is not one of `known`.
fn unknown(name: &str, known: &[&str]) -> String {
    format!(
        "unknown placeholder {{{{{name}}}}}; known: {}",
        known.iter().map(|n| format!("{{{{{n}}}}}")).collect::<Vec<_>>().join(", ")
    )
}

/// Checks that every `{{placeholder}}` in `template` is one of `allowed` and that braces are balanced
/// (validation; the kinds' `QUERY_PLACEHOLDERS` are the lists).
pub fn check_placeholders(template: &str, allowed: &[&str]) -> Result<(), String> {
    for piece in parse(template)? {
        if let Piece::Placeholder(name) = piece
            && !allowed.contains(&name)
        {
            return Err(unknown(name, allowed));
        }
    }
    Ok(())
}

/// Replaces every `{{placeholder}}` (spaces inside the braces allowed) in `query` with its value.
///
/// Values are inserted as they are, except that a value containing `"` or `\` is escaped as for a PromQL
/// double-quoted string literal (`\` → `\\`, `"` → `\"`), which is where label values go. Replacement is a
/// single pass: a value that itself contains `{{…}}` is not expanded again.
///
/// Errors, as a sentence naming the placeholder: an unknown placeholder, one whose value is `None`, an
/// unclosed `{{`, or a `}}` without its `{{` (the rules of [`check_placeholders`], from the same [`parse`]).
pub fn render(query: &str, vars: &TemplateVars) -> Result<String, String> {
    let mut out = String::with_capacity(query.len());
    for piece in parse(query)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Placeholder(name) => match vars.get(name) {
                None => return Err(unknown(name, TemplateVars::NAMES)),
                Some(None) => return Err(format!("the placeholder {{{{{name}}}}} has no value for this query")),
                Some(Some(value)) => push_escaped(&mut out, value),
            },
        }
    }
    Ok(out)
}

/// Appends `value`, escaping `\` and `"` for a PromQL double-quoted string.
fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            namespace: Some("ml".into()),
            name: Some("fraud-detector".into()),
            variant: Some("candidate".into()),
            version: Some("2.1.0".into()),
            revision: Some("5".into()),
            service: Some("fraud-detector-candidate".into()),
            interval: Some("1m".into()),
            window: None,
        }
    }

    #[test]
    fn renders() {
        let table: &[(&str, Result<&str, &str>)] = &[
            ("up", Ok("up")),
            ("", Ok("")),
            (r#"x{v="{{variant}}"}"#, Ok(r#"x{v="candidate"}"#)),
            (r#"x{v="{{ variant }}"}"#, Ok(r#"x{v="candidate"}"#)),
            (r#"x{v="{{  variant}}"}"#, Ok(r#"x{v="candidate"}"#)),
            (
                r#"sum(rate(x{ns="{{namespace}}",app="{{name}}",v="{{version}}",r="{{revision}}"}[{{interval}}]))"#,
                Ok(r#"sum(rate(x{ns="ml",app="fraud-detector",v="2.1.0",r="5"}[1m]))"#),
            ),
            ("{{variant}}{{variant}}", Ok("candidatecandidate")),
            // a single brace is PromQL, not a placeholder
            (r#"x{a="b"}"#, Ok(r#"x{a="b"}"#)),
            ("increase(x[{{window}}])", Err("the placeholder {{window}} has no value")),
            ("x{v=\"{{varient}}\"}", Err("unknown placeholder {{varient}}")),
            ("x{v=\"{{}}\"}", Err("unknown placeholder {{}}")),
            ("x{v=\"{{variant\"}", Err("not closed")),
            ("x{v=\"variant}}\"}", Err("no matching {{")),
            ("x}}{{variant}}", Err("no matching {{")),
        ];
        for (query, want) in table {
            let got = render(query, &vars());
            match (&got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{query}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{query}: {e}"),
                _ => panic!("{query}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn candidate_vars_select_the_candidate_as_its_pods_and_service_are_labelled() {
        let mut md = crate::fixtures::model_deployment("fraud");
        md.metadata.namespace = Some("ml".into());
        let candidate =
            RevisionRef { version: "2.1.0".into(), revision: 5, hash: Some("0a1b2c3d4e".into()), registry: None };
        let v = candidate_vars(&md, Some(&candidate), Some(&Duration::new("30s")));
        let query = r#"x{namespace="{{namespace}}",champion_ml_revision="{{revision}}",s="{{service}}",v="{{variant}}",n="{{name}}",m="{{version}}"}[{{interval}}]"#;
        assert_eq!(
            render(query, &v).unwrap(),
            r#"x{namespace="ml",champion_ml_revision="0a1b2c3d4e",s="fraud-candidate",v="candidate",n="fraud",m="2.1.0"}[30s]"#
        );
        // The revision is the hash on the pods, never the revision number.
        assert_eq!(v.revision.as_deref(), Some("0a1b2c3d4e"));
        let table: &[(Option<&RevisionRef>, Option<&str>)] = &[
            (None, None),
            (Some(&RevisionRef { hash: None, ..candidate.clone() }), None),
            (Some(&candidate), Some("0a1b2c3d4e")),
        ];
        for (c, want) in table {
            assert_eq!(candidate_vars(&md, *c, None).revision.as_deref(), *want, "{c:?}");
        }
        assert_eq!(candidate_vars(&md, None, None).interval.as_deref(), Some("1m"));
        assert!(
            render("{{revision}}", &candidate_vars(&md, None, None)).is_err(),
            "no hash: the query does not render"
        );
    }

    /// Every placeholder with a value.
    fn every_value() -> TemplateVars {
        let a = || Some("a".to_string());
        TemplateVars {
            namespace: a(),
            name: a(),
            variant: a(),
            version: a(),
            revision: a(),
            service: a(),
            interval: a(),
            window: a(),
        }
    }

    #[test]
    fn validation_and_rendering_read_a_template_the_same_way() {
        let full = every_value();
        let table = [
            "up",
            "x{v=\"{{ variant }}\"}[{{interval}}]",
            "{{service}}{{revision}}",
            "x{v=\"{{varient}}\"}",
            "x{v=\"{{variant\"}",
            "x}}{{variant}}",
            "x{v=\"variant}}\"}",
            "{{}}",
        ];
        for query in table {
            let checked = check_placeholders(query, TemplateVars::NAMES);
            let rendered = render(query, &full).map(|_| ());
            assert_eq!(checked, rendered, "{query}");
        }
        assert_eq!(
            parse("a{{ x }}b{{y}}").unwrap(),
            [Piece::Text("a"), Piece::Placeholder("x"), Piece::Text("b"), Piece::Placeholder("y")]
        );
    }

    #[test]
    fn escapes_values_for_string_literals() {
        let table = [
            ("plain", "plain"),
            (r#"a"b"#, r#"a\"b"#),
            (r"a\b", r"a\\b"),
            (r#"\""#, r#"\\\""#),
            ("{{name}}", "{{name}}"), // not expanded again
            ("ünïcode", "ünïcode"),
        ];
        for (value, want) in table {
            let v = TemplateVars { variant: Some(value.into()), ..TemplateVars::default() };
            assert_eq!(render(r#"x{v="{{variant}}"}"#, &v).unwrap(), format!(r#"x{{v="{want}"}}"#), "{value}");
        }
    }

    #[test]
    fn knows_every_placeholder_the_kinds_allow() {
        use crate::validation::{experiment, model_deployment, retrain_policy};
        let full = every_value();
        for list in
            [model_deployment::QUERY_PLACEHOLDERS, experiment::QUERY_PLACEHOLDERS, retrain_policy::QUERY_PLACEHOLDERS]
        {
            for name in list {
                assert!(TemplateVars::NAMES.contains(name), "{name}");
                assert_eq!(render(&format!("{{{{{name}}}}}"), &full).unwrap(), "a", "{name}");
            }
        }
    }
}
