fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .init();
    let dir = std::env::args().nth(1).unwrap();
    let mut c = ringlog_shard::server::ServerConfig::new(dir, 2);
    c.listen = "127.0.0.1:19092".parse().unwrap();
    c.advertised_port = 19092;
    let (tx, rx) = futures_channel::oneshot::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s).ok();
        let _ = tx.send(());
        std::thread::park();
    });
    ringlog_shard::server::serve(c, rx).unwrap();
}
