//! `--insecure-http`: a plain-http base URL on a host that is not loopback is refused
//! (exit 6, nothing sent) unless the flag is given, for both providers.

use std::net::{Ipv4Addr, SocketAddr};

use offline_emulator::{Emulator, EmulatorConfig};

mod common;
use common::{emulator_credentials, offline_at, output};

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_needs_the_flag_unless_the_host_is_loopback() {
    // 0.0.0.0 reaches this machine but is not a loopback address.
    let emu = Emulator::start(EmulatorConfig {
        addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let base = format!("http://0.0.0.0:{}", emu.addr().port());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_path_buf();
    let loopback = format!("http://127.0.0.1:{}", emu.addr().port());
    let run = |provider: &'static str, base: String, insecure: bool| {
        let mut cmd = offline_at(&base, &cache);
        cmd.args(["--provider", provider, "--json"])
            .envs(emulator_credentials(&emu));
        if insecure {
            cmd.arg("--insecure-http");
        }
        cmd.arg(if provider == "6pan" { "list" } else { "status" });
        if provider == "123pan" {
            cmd.arg("100001");
        }
        output(cmd)
    };
    for provider in ["123pan", "6pan"] {
        let refused = run(provider, base.clone(), false).await;
        assert_eq!(refused.status.code(), Some(6), "{provider}");
        let text = String::from_utf8_lossy(&refused.stdout);
        assert!(text.contains("plain http"), "{provider}: {text}");

        // Allowed with the flag, and on loopback without it: the call is made (123pan
        // answers that task 100001 does not exist, exit 3; 6pan lists, exit 0).
        let expected = if provider == "6pan" { 0 } else { 3 };
        for (base, insecure) in [(base.clone(), true), (loopback.clone(), false)] {
            let out = run(provider, base.clone(), insecure).await;
            assert_eq!(
                out.status.code(),
                Some(expected),
                "{provider} {base} {insecure}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert_eq!(emu.token_requests(), 2);
}
