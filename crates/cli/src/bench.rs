//! `partnerflow bench`: the reference workload of PRODUCT §6.
pub async fn run(
    _settings: &crate::settings::Settings,
    _workflows: usize,
    _concurrency: usize,
) -> anyhow::Result<()> {
    anyhow::bail!("bench is not built yet")
}
