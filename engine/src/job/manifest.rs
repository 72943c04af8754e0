//! The Kubernetes objects of a distributed replay: one Indexed Job (one pod per runner, the
//! runner's index in `JOB_COMPLETION_INDEX`, every pod starting at one `--start-at`), and on
//! request the ServiceAccount and the ClusterRole/Binding its runners need. Built as
//! `k8s-openapi` types, written as YAML documents for `kubectl apply` or sent as JSON.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, NodeAffinity,
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SecretVolumeSource,
    SecurityContext, ServiceAccount, Toleration, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

/// The port a runner serves its state and report on (see `report_server`).
pub const REPORT_PORT: i32 = 8086;
/// The environment variable that tells `engine run` where to serve its report.
pub const SERVE_REPORT_ENV: &str = "KREPLAY_SERVE_REPORT";
/// The runner container's working directory: an emptyDir where the timeline is downloaded.
pub const WORK_DIR: &str = "/var/lib/kreplay";
/// The label every object of one replay carries, valued with the replay's name.
pub const REPLAY_LABEL: &str = "kreplay.io/replay";
/// The non-root user of the runner image.
pub const RUNNER_UID: i64 = 65532;

/// Where runner pods get the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineLocation {
    /// An http(s) URL, downloaded into the pod's working directory, with its SHA-256 when known.
    Url {
        /// The URL.
        url: String,
        /// Lower-case hex digest.
        sha256: Option<String>,
    },
    /// A file on a PersistentVolumeClaim, mounted read-only.
    Pvc {
        /// The claim's name.
        claim: String,
        /// The timeline's path inside the volume.
        path: String,
    },
}

/// A toleration as written on the command line: `KEY[=VALUE]:EFFECT`, or `KEY` alone
/// (tolerate every taint with that key), or `:EFFECT`/`*` for everything.
#[derive(Debug, Clone, PartialEq)]
pub struct TolerationArg(pub Toleration);

impl std::str::FromStr for TolerationArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "*" {
            return Ok(TolerationArg(Toleration {
                operator: Some("Exists".into()),
                ..Toleration::default()
            }));
        }
        let (kv, effect) = match s.rsplit_once(':') {
            Some((kv, e)) => (kv, Some(e)),
            None => (s, None),
        };
        if let Some(e) = effect {
            if !matches!(e, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
                return Err(format!(
                    "toleration {s:?}: effect {e:?} is not NoSchedule, PreferNoSchedule or NoExecute"
                ));
            }
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (kv, None),
        };
        if key.is_empty() && value.is_some() {
            return Err(format!(
                "toleration {s:?}: a value needs a key (KEY=VALUE:EFFECT)"
            ));
        }
        Ok(TolerationArg(Toleration {
            key: (!key.is_empty()).then(|| key.to_string()),
            operator: Some(if value.is_some() { "Equal" } else { "Exists" }.into()),
            value: value.map(str::to_string),
            effect: effect.map(str::to_string),
            toleration_seconds: None,
        }))
    }
}

/// A `KEY=VALUE` pair (node selector) or `KEY=V1,V2` (node affinity: the node's label is one of
/// the values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValues {
    /// The label key.
    pub key: String,
    /// The accepted values.
    pub values: Vec<String>,
}

impl std::str::FromStr for KeyValues {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
        if k.is_empty() {
            return Err(format!("{s:?}: the key is empty (KEY=VALUE)"));
        }
        Ok(KeyValues {
            key: k.to_string(),
            values: v.split(',').map(str::to_string).collect(),
        })
    }
}

/// Everything that shapes a replay's Job.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// The Job's name (and the prefix of the other objects' names).
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The runner image.
    pub image: String,
    /// Where pods get the timeline.
    pub timeline: TimelineLocation,
    /// How many runners (one pod each).
    pub runners: u32,
    /// The common start instant, RFC 3339.
    pub start_at: String,
    /// `nodeSelector` entries.
    pub node_selector: Vec<KeyValues>,
    /// Required node affinity: every entry must match (label value one of the listed ones).
    pub node_affinity: Vec<KeyValues>,
    /// Tolerations.
    pub tolerations: Vec<TolerationArg>,
    /// The pods' service account (`None`: the namespace's default, or the one `rbac` creates).
    pub service_account: Option<String>,
    /// Whole CPUs per pod (requests = limits, so the static CPU manager gives whole cores).
    pub cpu: Option<u32>,
    /// Memory per pod (requests = limits), a Kubernetes quantity.
    pub memory: Option<String>,
    /// A Secret holding a kubeconfig under the key `config`, used instead of the service account.
    pub kubeconfig_secret: Option<String>,
    /// Create the ServiceAccount and a ClusterRole/Binding for the replayed verbs.
    pub rbac: Option<Vec<String>>,
    /// More `engine run` flags, passed through.
    pub engine_args: Vec<String>,
    /// How long a runner keeps its report for collection (Go duration text).
    pub serve_report_for: String,
}

/// A Kubernetes object of the replay.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Object {
    /// The runners' ServiceAccount.
    ServiceAccount(ServiceAccount),
    /// The permissions of the replayed verbs.
    ClusterRole(ClusterRole),
    /// Binds them to the ServiceAccount.
    ClusterRoleBinding(ClusterRoleBinding),
    /// The runners.
    Job(Box<Job>),
}

impl Object {
    /// The collection path to POST it to.
    pub fn collection_path(&self, namespace: &str) -> String {
        match self {
            Object::ServiceAccount(_) => format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
            Object::ClusterRole(_) => "/apis/rbac.authorization.k8s.io/v1/clusterroles".into(),
            Object::ClusterRoleBinding(_) => {
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings".into()
            }
            Object::Job(_) => format!("/apis/batch/v1/namespaces/{namespace}/jobs"),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        let meta = match self {
            Object::ServiceAccount(o) => &o.metadata,
            Object::ClusterRole(o) => &o.metadata,
            Object::ClusterRoleBinding(o) => &o.metadata,
            Object::Job(o) => &o.metadata,
        };
        meta.name.as_deref().unwrap_or("")
    }

    /// Its kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::ClusterRole(_) => "ClusterRole",
            Object::ClusterRoleBinding(_) => "ClusterRoleBinding",
            Object::Job(_) => "Job",
        }
    }

    /// Its path, for DELETE.
    pub fn object_path(&self, namespace: &str) -> String {
        format!("{}/{}", self.collection_path(namespace), self.name())
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.name())
    }
}

fn labels(plan: &JobPlan) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "kreplay".to_string()),
        (
            "app.kubernetes.io/component".to_string(),
            "runner".to_string(),
        ),
        (REPLAY_LABEL.to_string(), plan.name.clone()),
    ])
}

fn meta(plan: &JobPlan, name: &str, namespaced: bool) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespaced.then(|| plan.namespace.clone()),
        labels: Some(labels(plan)),
        ..ObjectMeta::default()
    }
}

impl JobPlan {
    /// The name of the ServiceAccount `rbac` creates.
    pub fn rbac_account(&self) -> String {
        format!("{}-runner", self.name)
    }

    /// The objects to create, in creation order (the Job last).
    pub fn objects(&self) -> Vec<Object> {
        let mut out = Vec::new();
        if let Some(verbs) = &self.rbac {
            let account = self.rbac_account();
            out.push(Object::ServiceAccount(ServiceAccount {
                metadata: meta(self, &account, true),
                ..ServiceAccount::default()
            }));
            out.push(Object::ClusterRole(ClusterRole {
                metadata: meta(self, &account, false),
                rules: Some(vec![
                    PolicyRule {
                        api_groups: Some(vec!["*".into()]),
                        resources: Some(vec!["*".into()]),
                        verbs: verbs.clone(),
                        ..PolicyRule::default()
                    },
                    // The preflight's `GET /version`.
                    PolicyRule {
                        non_resource_urls: Some(vec!["/version".into()]),
                        verbs: vec!["get".into()],
                        ..PolicyRule::default()
                    },
                ]),
                ..ClusterRole::default()
            }));
            out.push(Object::ClusterRoleBinding(ClusterRoleBinding {
                metadata: meta(self, &account, false),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: account.clone(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: account,
                    namespace: Some(self.namespace.clone()),
                    ..Subject::default()
                }]),
            }));
        }
        out.push(Object::Job(Box::new(self.job())));
        out
    }

    fn engine_args(&self) -> Vec<String> {
        let timeline = match &self.timeline {
            TimelineLocation::Url { url, .. } => url.clone(),
            TimelineLocation::Pvc { path, .. } => {
                format!("timeline/{}", path.trim_start_matches('/'))
            }
        };
        let mut args = vec![
            "run".to_string(),
            timeline,
            "--start-at".into(),
            self.start_at.clone(),
            "--quiet".into(),
            "--serve-report-for".into(),
            self.serve_report_for.clone(),
        ];
        if let TimelineLocation::Url {
            sha256: Some(digest),
            ..
        } = &self.timeline
        {
            args.extend(["--timeline-sha256".into(), digest.clone()]);
        }
        if self.kubeconfig_secret.is_some() {
            args.extend(["--kubeconfig".into(), "kubeconfig/config".into()]);
        }
        args.extend(self.engine_args.iter().cloned());
        args
    }

    /// The Indexed Job.
    pub fn job(&self) -> Job {
        let n = i32::try_from(self.runners).unwrap_or(i32::MAX);
        let mut mounts = vec![VolumeMount {
            name: "work".into(),
            mount_path: WORK_DIR.into(),
            ..VolumeMount::default()
        }];
        let mut volumes = vec![Volume {
            name: "work".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        }];
        if let TimelineLocation::Pvc { claim, .. } = &self.timeline {
            mounts.push(VolumeMount {
                name: "timeline".into(),
                mount_path: format!("{WORK_DIR}/timeline"),
                read_only: Some(true),
                ..VolumeMount::default()
            });
            volumes.push(Volume {
                name: "timeline".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: Some(true),
                }),
                ..Volume::default()
            });
        }
        if let Some(secret) = &self.kubeconfig_secret {
            mounts.push(VolumeMount {
                name: "kubeconfig".into(),
                mount_path: format!("{WORK_DIR}/kubeconfig"),
                read_only: Some(true),
                ..VolumeMount::default()
            });
            volumes.push(Volume {
                name: "kubeconfig".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.clone()),
                    default_mode: Some(0o400),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
        let mut quantities = BTreeMap::new();
        if let Some(cpu) = self.cpu {
            quantities.insert("cpu".to_string(), Quantity(cpu.to_string()));
        }
        if let Some(memory) = &self.memory {
            quantities.insert("memory".to_string(), Quantity(memory.clone()));
        }
        let resources = (!quantities.is_empty()).then(|| ResourceRequirements {
            limits: Some(quantities.clone()),
            requests: Some(quantities),
            ..ResourceRequirements::default()
        });
        let container = Container {
            name: "runner".into(),
            image: Some(self.image.clone()),
            args: Some(self.engine_args()),
            working_dir: Some(WORK_DIR.into()),
            env: Some(vec![EnvVar {
                name: SERVE_REPORT_ENV.into(),
                value: Some(format!("0.0.0.0:{REPORT_PORT}")),
                ..EnvVar::default()
            }]),
            ports: Some(vec![ContainerPort {
                name: Some("report".into()),
                container_port: REPORT_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            resources,
            volume_mounts: Some(mounts),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                ..SecurityContext::default()
            }),
            ..Container::default()
        };
        let affinity = (!self.node_affinity.is_empty()).then(|| Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(
                            self.node_affinity
                                .iter()
                                .map(|kv| NodeSelectorRequirement {
                                    key: kv.key.clone(),
                                    operator: "In".into(),
                                    values: Some(kv.values.clone()),
                                })
                                .collect(),
                        ),
                        ..NodeSelectorTerm::default()
                    }],
                }),
                ..NodeAffinity::default()
            }),
            ..Affinity::default()
        });
        let service_account = self
            .service_account
            .clone()
            .or_else(|| self.rbac.as_ref().map(|_| self.rbac_account()));
        let pod = PodSpec {
            restart_policy: Some("Never".into()),
            service_account_name: service_account,
            automount_service_account_token: Some(self.kubeconfig_secret.is_none()),
            node_selector: (!self.node_selector.is_empty()).then(|| {
                self.node_selector
                    .iter()
                    .map(|kv| (kv.key.clone(), kv.values.join(",")))
                    .collect()
            }),
            affinity,
            tolerations: (!self.tolerations.is_empty())
                .then(|| self.tolerations.iter().map(|t| t.0.clone()).collect()),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(RUNNER_UID),
                run_as_group: Some(RUNNER_UID),
                fs_group: Some(RUNNER_UID),
                ..PodSecurityContext::default()
            }),
            containers: vec![container],
            volumes: Some(volumes),
            ..PodSpec::default()
        };
        let mut job_meta = meta(self, &self.name, true);
        job_meta.annotations = Some(BTreeMap::from([(
            "kreplay.io/start-at".to_string(),
            self.start_at.clone(),
        )]));
        Job {
            metadata: job_meta,
            spec: Some(JobSpec {
                completion_mode: Some("Indexed".into()),
                completions: Some(n),
                parallelism: Some(n),
                // A retried runner would replay its share twice: a failed runner is reported,
                // and, per index, its failure does not stop the other runners.
                backoff_limit_per_index: Some(0),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels(self)),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(pod),
                },
                ..JobSpec::default()
            }),
            status: None,
        }
    }
}

/// The objects as YAML documents separated by `---`.
pub fn to_yaml(objects: &[Object]) -> Result<String, String> {
    let mut out = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_saphyr::to_string(o).map_err(|e| e.to_string())?);
    }
    Ok(out)
}
