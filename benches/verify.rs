//! Verification throughput for a 2.5 KB event (issue goal: >= 150,000/s on one core).
//! Run: cargo bench --bench verify

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stripe_sync::secret::Secret;
use stripe_sync::signature;

fn payload_2_5k() -> Vec<u8> {
    let mut p = String::from(
        "{\n  \"id\": \"evt_1PgcMqB7WZ01zgkW0tOsZ8Ja\",\n  \"object\": \"event\",\n  \"api_version\": \"2025-06-30.basil\",\n  \"created\": 1767225590,\n  \"type\": \"invoice.paid\",\n  \"data\": {\n    \"object\": {\n      \"id\": \"in_1PgcMqB7WZ01zgkW\",\n      \"object\": \"invoice\",\n      \"lines\": [",
    );
    while p.len() < 2_480 {
        p.push_str(
            "\n        {\"id\": \"il_1PgcMqB7WZ01\", \"amount\": 2000, \"currency\": \"usd\"},",
        );
    }
    p.push_str("\n      ]\n    }\n  }\n}");
    p.truncate(2_560);
    p.into_bytes()
}

fn bench(c: &mut Criterion) {
    let payload = payload_2_5k();
    let secret = Secret::new("whsec_bench_0123456789abcdef0123456789abcdef");
    let t = 1_767_225_590;
    let header = signature::sign(&secret, t, &payload).header;
    let secrets = [secret.clone()];
    assert!(signature::verify(&payload, &header, &secrets, 300, t).valid);

    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_2_5kb_event", |b| {
        b.iter(|| signature::verify(black_box(&payload), black_box(&header), &secrets, 300, t))
    });
    g.bench_function("sign_2_5kb_event", |b| {
        b.iter(|| signature::sign(&secret, t, black_box(&payload)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
