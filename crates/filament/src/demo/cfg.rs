//! The demo's configuration calls against the config API: the same REST calls `vnc_api` makes
//! (tf-facts §1.10): project, virtual-network with a subnet on default-network-ipam,
//! virtual-router with `virtual_router_ip_address`, virtual-machine, virtual-machine-interface with its
//! VN and VM refs, instance-ip; then reads back what the server allocated (MAC, IP).

use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

/// A small client of the config API at `base`.
pub(crate) struct Api {
    pub(crate) base: String,
    http: reqwest::Client,
}

impl Api {
    pub(crate) fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    /// True once `GET /` answers 200.
    pub(crate) async fn up(&self) -> bool {
        self.http
            .get(format!("{}/", self.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// `POST /<collection>` with `{ty: body}`; returns the uuid.
    async fn create(&self, ty: &str, body: Value) -> anyhow::Result<String> {
        let url = format!("{}/{ty}s", self.base);
        let r = self
            .http
            .post(&url)
            .json(&json!({ ty: body }))
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("POST {url}: {status}: {text}");
        }
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("POST {url}: {text}"))?;
        v[ty]["uuid"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("POST {url}: no uuid in {text}"))
    }

    /// `GET /<type>/<uuid>`: the object.
    pub(crate) async fn read(&self, ty: &str, uuid: &str) -> anyhow::Result<Value> {
        let url = format!("{}/{ty}/{uuid}", self.base);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !r.status().is_success() {
            bail!("GET {url}: {}", r.status());
        }
        let mut v: Value = r.json().await.with_context(|| format!("GET {url}"))?;
        Ok(v[ty].take())
    }

    pub(crate) async fn project(&self, name: &str) -> anyhow::Result<String> {
        self.create(
            "project",
            json!({"fq_name": ["default-domain", name], "parent_type": "domain"}),
        )
        .await
    }

    /// A VN under the project with one IPv4 subnet on default-network-ipam (the gateway and
    /// service address are left to the server: last-1 and last-2, as TF does).
    pub(crate) async fn network(
        &self,
        project: &str,
        name: &str,
        cidr: &str,
    ) -> anyhow::Result<String> {
        let (prefix, len) = cidr.split_once('/').context("cidr without /")?;
        let len: u32 = len.parse().context("cidr length")?;
        self.create(
            "virtual-network",
            json!({"fq_name": ["default-domain", project, name], "parent_type": "project",
                   "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
                       "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": prefix, "ip_prefix_len": len}}]}}]}),
        )
        .await
    }

    /// Set global-vrouter-config's encapsulation priorities (e.g. MPLSoUDP first).
    pub(crate) async fn encapsulation(&self, order: &[&str]) -> anyhow::Result<()> {
        let url = format!("{}/global-vrouter-configs", self.base);
        let list: Value = self.http.get(&url).send().await?.json().await?;
        let uuid = list["global-vrouter-configs"][0]["uuid"]
            .as_str()
            .context("no global-vrouter-config")?
            .to_string();
        let url = format!("{}/global-vrouter-config/{uuid}", self.base);
        let r = self
            .http
            .put(&url)
            .json(&json!({"global-vrouter-config": {"encapsulation_priorities": {"encapsulation": order}}}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!(
                "PUT {url}: {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    pub(crate) async fn virtual_router(&self, name: &str, ip: &str) -> anyhow::Result<String> {
        self.create(
            "virtual-router",
            json!({"fq_name": ["default-global-system-config", name],
                   "parent_type": "global-system-config", "virtual_router_ip_address": ip}),
        )
        .await
    }

    pub(crate) async fn virtual_machine(&self, name: &str) -> anyhow::Result<String> {
        self.create("virtual-machine", json!({"fq_name": [name]}))
            .await
    }

    /// A port: VMI (VN + VM refs) and its instance-ip. Returns (vmi uuid, iip uuid, MAC, IP).
    pub(crate) async fn port(
        &self,
        project: &str,
        name: &str,
        vn_fq: &[&str],
        vm: &str,
    ) -> anyhow::Result<(String, String, String, String)> {
        let vmi = self
            .create(
                "virtual-machine-interface",
                json!({"fq_name": ["default-domain", project, name], "parent_type": "project",
                       "virtual_network_refs": [{"to": vn_fq}],
                       "virtual_machine_refs": [{"uuid": vm, "to": [name]}]}),
            )
            .await?;
        let iip = self
            .create(
                "instance-ip",
                json!({"fq_name": [format!("{name}-iip")],
                       "virtual_network_refs": [{"to": vn_fq}],
                       "virtual_machine_interface_refs": [{"uuid": vmi, "to": ["default-domain", project, name]}]}),
            )
            .await?;
        let v = self.read("virtual-machine-interface", &vmi).await?;
        let mac = v["virtual_machine_interface_mac_addresses"]["mac_address"][0]
            .as_str()
            .with_context(|| format!("port {name}: the server allocated no MAC"))?
            .to_string();
        let i = self.read("instance-ip", &iip).await?;
        let ip = i["instance_ip_address"]
            .as_str()
            .with_context(|| format!("port {name}: the server allocated no IP"))?
            .to_string();
        Ok((vmi, iip, mac, ip))
    }

    /// The subnet's gateway and service (DNS) address as the server assigned them.
    pub(crate) async fn gateway_dns(&self, vn: &str) -> anyhow::Result<(String, String)> {
        let v = self.read("virtual-network", vn).await?;
        let s = &v["network_ipam_refs"][0]["attr"]["ipam_subnets"][0];
        Ok((
            s["default_gateway"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            s["dns_server_address"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ))
    }
}

/// `POST /port` on an agent's port API (TF's keys plus `vm-namespace`/`vm-ifname`).
pub(crate) async fn plug(agent: &str, body: &Value) -> anyhow::Result<()> {
    let url = format!("{agent}/port");
    let r = reqwest::Client::new()
        .post(&url)
        .timeout(Duration::from_secs(20))
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = r.status();
    if !status.is_success() {
        bail!(
            "POST {url}: {status}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// `GET url` as JSON, with a short timeout; None on any failure.
pub(crate) async fn get_json(url: &str) -> Option<Value> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}
