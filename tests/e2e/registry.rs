//! The registry client against the real MLflow that `hack/test.sh` starts (`tests/cluster/mlflow.sh`): the
//! calls that following an alias and promoting through the registry will make, end to end.

use std::collections::BTreeMap;
use std::time::Duration;

use champion::registry::{MlflowClient, ModelVersionStatus, NewModelVersion, Registry, VersionSearch};

use crate::harness::TestEnv;

/// Creates a model with two versions, points an alias at the first, resolves it, moves it to the second,
/// tags that version, and reads it all back, including the errors for what does not exist.
#[tokio::test(flavor = "multi_thread")]
async fn registry_client_against_real_mlflow() {
    let env = TestEnv::new("registry").await;
    let mlflow = MlflowClient::new(env.mlflow_tracking_uri(), Duration::from_secs(10));
    // The namespace's name is unique, so a rerun against the same MLflow does not collide.
    let model = env.ns.as_str();

    let created = mlflow.create_registered_model(model, Some("e2e: the registry client")).await.unwrap();
    assert_eq!((created.name.as_str(), created.description.as_deref()), (model, Some("e2e: the registry client")));
    let again = mlflow.create_registered_model(model, None).await.unwrap_err();
    assert!(again.is_already_exists(), "{again}");

    let mut versions = Vec::new();
    for i in 1..=2 {
        let new = NewModelVersion {
            name: model.to_string(),
            source: format!("s3://champion-e2e/{model}/{i}"),
            run_id: None,
            description: Some(format!("version {i}")),
            tags: BTreeMap::from([("e2e.index".to_string(), i.to_string())]),
        };
        let v = mlflow.create_model_version(&new).await.unwrap();
        assert_eq!(v.source.as_deref(), Some(new.source.as_str()));
        assert_eq!(v.tags, new.tags);
        versions.push(v);
    }
    let (v1, v2) = (&versions[0], &versions[1]);
    assert_eq!((v1.version.as_str(), v2.version.as_str()), ("1", "2"));
    for v in [v1, v2] {
        // A version whose source is a plain URI is ready at once; one that were not could not be served.
        assert_eq!(v.status, Some(ModelVersionStatus::Ready), "{v:?}");
    }

    let missing = mlflow.get_model_version_by_alias(model, "champion").await.unwrap_err();
    assert!(missing.is_not_found(), "an alias not set yet: {missing}");

    mlflow.set_registered_model_alias(model, "champion", "1").await.unwrap();
    let resolved = mlflow.get_model_version_by_alias(model, "champion").await.unwrap();
    assert_eq!(resolved.version, "1");
    assert_eq!(resolved.source.as_deref(), Some(format!("s3://champion-e2e/{model}/1").as_str()));
    assert_eq!(resolved.aliases, ["champion"]);

    mlflow.set_registered_model_alias(model, "champion", "2").await.unwrap();
    let moved = mlflow.get_model_version_by_alias(model, "champion").await.unwrap();
    assert_eq!((moved.version.as_str(), moved.description.as_deref()), ("2", Some("version 2")));
    assert!(mlflow.get_model_version(model, "1").await.unwrap().aliases.is_empty(), "the alias left version 1");

    mlflow.set_model_version_tag(model, "2", "champion.ml/stage", "production").await.unwrap();
    mlflow.set_model_version_tag(model, "1", "champion.ml/rolled-back", "error-rate above 0.05").await.unwrap();
    let v2 = mlflow.get_model_version(model, "2").await.unwrap();
    assert_eq!(v2.tags.get("champion.ml/stage").map(String::as_str), Some("production"));
    assert_eq!(v2.tags.get("e2e.index").map(String::as_str), Some("2"), "creation tags stay");
    assert_eq!(v2.aliases, ["champion"]);
    let v1 = mlflow.get_model_version(model, "1").await.unwrap();
    assert_eq!(v1.tags.get("champion.ml/rolled-back").map(String::as_str), Some("error-rate above 0.05"));

    let registered = mlflow.get_registered_model(model).await.unwrap();
    assert_eq!(registered.aliases, BTreeMap::from([("champion".to_string(), "2".to_string())]));

    // Newest first, one per page, so the page token is exercised too.
    let mut search = VersionSearch::of_model(model, 1).unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let page = mlflow.search_model_versions(&search).await.unwrap();
        seen.extend(page.versions.iter().map(|v| v.version.clone()));
        match page.next_page_token {
            Some(token) => search.page_token = Some(token),
            None => break,
        }
    }
    assert_eq!(seen, ["2", "1"]);

    let e = mlflow.get_model_version(model, "3").await.unwrap_err();
    assert!(e.is_not_found() && e.to_string().contains("RESOURCE_DOES_NOT_EXIST"), "{e}");
    let e = mlflow.set_registered_model_alias(model, "champion", "3").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = mlflow.get_registered_model(&format!("{model}-missing")).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(
        mlflow.get_model_version_by_alias(model, "champion").await.unwrap().version,
        "2",
        "a refused move moves nothing"
    );

    mlflow.delete_registered_model_alias(model, "champion").await.unwrap();
    let gone = mlflow.get_model_version_by_alias(model, "champion").await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    assert!(mlflow.get_registered_model(model).await.unwrap().aliases.is_empty());
}
