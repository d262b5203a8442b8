mod common;
use common::*;
use ringlog_engine::io::dma::DmaStorage;
use ringlog_engine::io::mem::MemStorage;
use ringlog_engine::partition::PartitionLog;
use ringlog_engine::{Clock, LogConfig};

#[test]
fn smoke_mem_and_disk() {
    run(|| async {
        let mem = MemStorage::new();
        let log = PartitionLog::open(mem.clone(), "/d/t/0", LogConfig::default(), Clock::System).await.unwrap();
        for i in 0..10 {
            let a = log.append(&batch(i, 3, 100, 1000 + i as i64)).await.unwrap();
            assert_eq!(a.base_offset, i * 3);
        }
        let r = log.log().read(0, 1 << 20).await.unwrap();
        assert_eq!(r.iter().count(), 10);
        log.close().await.unwrap();
        let log = PartitionLog::open(mem.clone(), "/d/t/0", LogConfig::default(), Clock::System).await.unwrap();
        assert_eq!(log.log().next_offset(), 30);

        let dir = disk_dir("smoke");
        let log = PartitionLog::open(DmaStorage, &dir, LogConfig::default(), Clock::System).await.unwrap();
        for i in 0..10 {
            log.append(&batch(i, 3, 1000, 1000)).await.unwrap();
        }
        log.close().await.unwrap();
        let log = PartitionLog::open(DmaStorage, &dir, LogConfig::default(), Clock::System).await.unwrap();
        assert_eq!(log.log().next_offset(), 30);
        let r = log.log().read(5, 1 << 20).await.unwrap();
        assert_eq!(r.iter().next().unwrap().0.base_offset, 3);
    });
}
