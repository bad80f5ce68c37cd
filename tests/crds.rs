//! The committed CRDs (`crds/`, and the copies kustomize installs from `config/crd/`) must be exactly
//! what the code generates: regenerate with `cargo run -- crds --write-dir crds --write-dir config/crd`.

use std::path::Path;

#[test]
fn committed_crds_match_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = champion::crds::all();
    assert_eq!(generated.len(), 3);
    for dir in ["crds", "config/crd"] {
        for (file, crd) in &generated {
            let path = root.join(dir).join(file);
            let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let want = champion::crds::to_yaml(crd).unwrap();
            assert!(
                committed == want,
                "{} differs from the generated CRD; run `cargo run -- crds --write-dir crds --write-dir config/crd`",
                path.display()
            );
        }
    }
}

#[test]
fn crds_carry_names_columns_and_categories() {
    for (_, crd) in champion::crds::all() {
        let names = &crd.spec.names;
        assert_eq!(names.categories.as_deref(), Some(&["champion".to_string()][..]), "{}", names.kind);
        assert_eq!(names.short_names.as_ref().map(Vec::len), Some(1), "{}", names.kind);
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(), "{}", names.kind);
        let columns: Vec<&str> = version.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
        let want: &[&str] = match names.kind.as_str() {
            "ModelDeployment" => &["Model", "Candidate", "Weight", "Step", "Phase", "Age"],
            "Experiment" => &["Deployment", "Mode", "Phase", "Winner", "Confidence", "Age"],
            "RetrainPolicy" => &["Deployment", "Phase", "Last-Trigger", "Last-Run", "Next", "Age"],
            other => panic!("unexpected kind {other}"),
        };
        assert_eq!(columns, want, "{}", names.kind);
    }
}
