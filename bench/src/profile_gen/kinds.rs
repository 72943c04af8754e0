//! The resource kinds the generator uses and where their objects live on the API.

/// One resource kind: how it is addressed and what its objects look like.
#[derive(Debug)]
pub(crate) struct Kind {
    /// `resourceKind` in the profile.
    pub name: &'static str,
    /// API group/version path prefix (`/api/v1`, `/apis/apps/v1`, ...).
    pub group_path: &'static str,
    /// `apiVersion` of the objects.
    pub api_version: &'static str,
    /// Collection name in paths.
    pub plural: &'static str,
    /// Namespaced (else cluster-scoped).
    pub namespaced: bool,
    /// Object name prefix.
    pub prefix: &'static str,
}

pub(crate) const POD: Kind = Kind {
    name: "Pod",
    group_path: "/api/v1",
    api_version: "v1",
    plural: "pods",
    namespaced: true,
    prefix: "pod",
};
pub(crate) const CONFIG_MAP: Kind = Kind {
    name: "ConfigMap",
    group_path: "/api/v1",
    api_version: "v1",
    plural: "configmaps",
    namespaced: true,
    prefix: "cm",
};
pub(crate) const SECRET: Kind = Kind {
    name: "Secret",
    group_path: "/api/v1",
    api_version: "v1",
    plural: "secrets",
    namespaced: true,
    prefix: "secret",
};
pub(crate) const DEPLOYMENT: Kind = Kind {
    name: "Deployment",
    group_path: "/apis/apps/v1",
    api_version: "apps/v1",
    plural: "deployments",
    namespaced: true,
    prefix: "deploy",
};
/// The custom resource of the Kubernetes CRD tutorial (`stable.example.com/v1`, CronTab).
pub(crate) const CRON_TAB: Kind = Kind {
    name: "CronTab",
    group_path: "/apis/stable.example.com/v1",
    api_version: "stable.example.com/v1",
    plural: "crontabs",
    namespaced: true,
    prefix: "crontab",
};
pub(crate) const NODE: Kind = Kind {
    name: "Node",
    group_path: "/api/v1",
    api_version: "v1",
    plural: "nodes",
    namespaced: false,
    prefix: "node",
};
pub(crate) const NAMESPACE: Kind = Kind {
    name: "Namespace",
    group_path: "/api/v1",
    api_version: "v1",
    plural: "namespaces",
    namespaced: false,
    prefix: "kreplay-gen-ns",
};

/// Object slot `j` has kind `KIND_CYCLE[j % 20]`: pods are the most common objects,
/// namespaces the rarest.
pub(crate) const KIND_CYCLE: [&Kind; 20] = [
    &POD,
    &CONFIG_MAP,
    &POD,
    &SECRET,
    &POD,
    &DEPLOYMENT,
    &CONFIG_MAP,
    &POD,
    &CRON_TAB,
    &NODE,
    &POD,
    &CONFIG_MAP,
    &SECRET,
    &POD,
    &DEPLOYMENT,
    &CRON_TAB,
    &CONFIG_MAP,
    &POD,
    &NODE,
    &NAMESPACE,
];

/// Distinct `app` label values.
pub(crate) const APPS: u32 = 8;

/// Fixed attributes of object slot `j` among `namespaces` namespaces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub kind: &'static Kind,
    /// Namespace number (meaningless for cluster-scoped kinds).
    pub ns: u32,
    /// `app` label number.
    pub app: u32,
}

impl Slot {
    pub(crate) fn of(j: u32, namespaces: u32) -> Slot {
        let cycle = KIND_CYCLE.len() as u32;
        Slot {
            kind: KIND_CYCLE[(j % cycle) as usize],
            ns: (j / cycle) % namespaces,
            app: (j / cycle / namespaces) % APPS,
        }
    }

    /// Slots sharing this slot's kind, namespace and `app` label (what a
    /// DELETECOLLECTION by that label removes), below `objects`.
    pub(crate) fn group_members(
        &self,
        objects: u32,
        namespaces: u32,
    ) -> impl Iterator<Item = u32> + '_ {
        let cycle = KIND_CYCLE.len() as u64;
        let stride = cycle * u64::from(namespaces) * u64::from(APPS);
        let base = cycle * (u64::from(self.ns) + u64::from(namespaces) * u64::from(self.app));
        let kind = self.kind;
        (0..cycle as usize)
            .filter(move |&p| KIND_CYCLE[p].name == kind.name)
            .flat_map(move |p| {
                (0u64..)
                    .map(move |r| p as u64 + base + stride * r)
                    .take_while(move |&j| j < u64::from(objects))
                    .map(|j| j as u32)
            })
    }
}

/// Namespace names used by the generator: `kreplay-0`, `kreplay-1`, ... (expected to exist
/// on the target, as they do in apisim).
pub(crate) fn push_namespace(out: &mut String, ns: u32) {
    use std::fmt::Write as _;
    let _ = write!(out, "kreplay-{ns}");
}
