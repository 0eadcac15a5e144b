//! xrdp starts on its free port and answers RDP; with `xfreerdp` and `Xvfb` installed (not
//! required), a real session logs in, and the session helpers (xclip, xdotool, home files)
//! and the clean stop are checked against it.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An X.224 Connection Request asking for TLS (the bytes every RDP client starts with).
const CONNECTION_REQUEST_TLS: [u8; 19] = [
    0x03, 0x00, 0x00, 0x13, 0x0E, 0xE0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x01,
    0x00, 0x00, 0x00,
];

#[tokio::test]
async fn xrdp_listens_and_selects_tls() {
    if !available() {
        return;
    }
    let xrdp = Xrdp::start().await.expect("xrdp starts");
    let mut stream = tokio::net::TcpStream::connect(xrdp.addr)
        .await
        .expect("connect");
    stream
        .write_all(&CONNECTION_REQUEST_TLS)
        .await
        .expect("send");
    let mut confirm = [0u8; 19];
    stream.read_exact(&mut confirm).await.expect("confirm");
    // TPKT version 3, X.224 Connection Confirm (0xD0), RDP_NEG_RSP (2) selecting SSL (1).
    assert_eq!(confirm[0], 3);
    assert_eq!(confirm[5], 0xD0, "{confirm:02x?}");
    assert_eq!(confirm[11], 0x02, "{confirm:02x?}");
    assert_eq!(confirm[15], 0x01, "{confirm:02x?}");
    assert_eq!(xrdp.public_key_sha256().len(), 64);
    assert!(xrdp.session_display().is_none());
    let addr = xrdp.addr;
    xrdp.stop().expect("clean stop");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A viewer: Xvfb on a free display with xfreerdp logged in to `xrdp` as the test user.
struct Viewer {
    xvfb: Child,
    xfreerdp: Child,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        kill_group(self.xfreerdp.id());
        kill_group(self.xvfb.id());
    }
}

async fn view(xrdp: &Xrdp) -> anyhow::Result<Viewer> {
    let display = free_display_offset(xrdp.addr.port().wrapping_add(150));
    let mut xvfb = Command::new("Xvfb");
    xvfb.arg(format!(":{display}"))
        .args(["-screen", "0", "1024x768x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let xvfb = own_group(&mut xvfb).spawn()?;
    let socket = format!("/tmp/.X11-unix/X{display}");
    let started = Instant::now();
    while !Path::new(&socket).exists() {
        anyhow::ensure!(started.elapsed() < super::super::START_DEADLINE, "no Xvfb");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let user = xrdp.user();
    let mut xfreerdp = Command::new("xfreerdp");
    xfreerdp
        .env("DISPLAY", format!(":{display}"))
        .arg(format!("/v:{}", xrdp.addr))
        .arg(format!("/u:{}", user.username))
        .arg(format!("/p:{}", user.password))
        .args(["/cert:ignore", "/sec:tls", "/size:800x600", "-clipboard"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let xfreerdp = own_group(&mut xfreerdp).spawn()?;
    Ok(Viewer { xvfb, xfreerdp })
}

#[tokio::test]
async fn a_session_runs_and_the_helpers_reach_it() {
    if !available() {
        return;
    }
    let optional = ["xfreerdp", "Xvfb"].into_iter().all(|program| {
        std::process::Command::new("which")
            .arg(program)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !optional {
        eprintln!("SKIPPING: xfreerdp and Xvfb are not installed (optional)");
        return;
    }
    let xrdp = Xrdp::start().await.expect("xrdp starts");
    let _viewer = view(&xrdp).await.expect("viewer");
    let display = xrdp.wait_for_session().await.expect("a session");
    assert!(display >= xrdp.display_offset);
    assert!(
        xrdp.xrdp_log()
            .contains(&format!("login successful for user {USERNAME}")),
        "{}",
        xrdp.logs()
    );

    xrdp.set_clipboard_text(display, "copied in the session")
        .await
        .expect("xclip -i");
    xrdp.wait_for_clipboard(display, "copied in the session", Duration::from_secs(5))
        .await
        .expect("xclip -o reads it back");

    let file = format!("typed-{}", xrdp.addr.port());
    xrdp.remove_home_file(&file);
    // xdotool types into the focused xterm through XTEST in the session's own display.
    let window = xrdp
        .wait_for_window(display, "xterm", Duration::from_secs(10))
        .await
        .expect("the xterm");
    xrdp.xdotool(display, &["windowfocus", "--sync", &window])
        .await
        .expect("focus");
    xrdp.xdotool(display, &["type", &format!("echo ok > ~/{file}")])
        .await
        .expect("type");
    xrdp.xdotool(display, &["key", "Return"])
        .await
        .expect("enter");
    let text = xrdp
        .wait_for_home_file(&file, Duration::from_secs(10), |t| t.contains("ok"))
        .await
        .expect("the typed command ran");
    assert_eq!(text, "ok\n");
    xrdp.remove_home_file(&file);

    let sessions: Vec<u32> = xrdp.session_processes().iter().map(|p| p.pid).collect();
    assert!(!sessions.is_empty());
    xrdp.stop().expect("clean stop");
    let alive: Vec<Process> = procs::all()
        .into_iter()
        .filter(|p| sessions.contains(&p.pid))
        .collect();
    assert!(alive.is_empty(), "left behind: {alive:?}");
}
