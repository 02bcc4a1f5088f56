use tracer::{
    decode::Clock,
    source::{read_ring, Input, Probes, ReaderStats, SourceOptions},
};
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let mut p = Probes::load(&SourceOptions::default())?;
    eprintln!("{:?} {:?}", p.attached, p.warnings);
    let ring = p.take_ring()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(read_ring(ring, Clock::now(), tx, Default::default(), stop));
    while let Some(Input::Event(ev)) = rx.recv().await {
        println!("{}", serde_json::to_string(&ev)?);
    }
    Ok(())
}
