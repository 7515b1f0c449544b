//! `-e`/`-c`: the child's NCAT_* environment, program arguments,
//! `--stderr`, `--pty`, and a child per UDP peer.

use std::io::Write;

use super::proc::{Cat, WAIT, connect, read_all, udp};
use super::server;

#[test]
fn exec_gets_ncat_environment() {
    let (_srv, port) = Cat::listen(&[
        "-k",
        "-c",
        "echo \"$NCAT_REMOTE_ADDR $NCAT_REMOTE_PORT $NCAT_LOCAL_ADDR $NCAT_LOCAL_PORT $NCAT_PROTO\"",
    ]);
    let mut s = connect(port);
    let me = s.local_addr().unwrap();
    let got = String::from_utf8(read_all(&mut s)).unwrap();
    assert_eq!(
        got,
        format!("127.0.0.1 {} 127.0.0.1 {port} TCP\n", me.port())
    );
    // Connect mode too.
    let (port2, h) = server(|mut s| read_all(&mut s));
    let c = Cat::spawn(&[
        "-c",
        "echo $NCAT_REMOTE_PORT $NCAT_PROTO",
        "127.0.0.1",
        &port2.to_string(),
    ]);
    c.wait(WAIT);
    assert_eq!(
        String::from_utf8(h.join().unwrap()).unwrap(),
        format!("{port2} TCP\n")
    );
}

#[test]
fn exec_program_with_arguments() {
    let (_srv, port) = Cat::listen(&["-k", "-e", "/bin/echo one two"]);
    assert_eq!(read_all(&mut connect(port)), b"one two\n");
}

#[test]
fn exec_stderr_relayed_on_request() {
    let (_srv, port) = Cat::listen(&["-k", "--stderr", "-c", "echo out; echo err >&2"]);
    assert_eq!(read_all(&mut connect(port)), b"out\nerr\n");
    let (_srv2, port2) = Cat::listen(&["-k", "-c", "echo out; echo err >&2"]);
    assert_eq!(read_all(&mut connect(port2)), b"out\n");
}

#[test]
fn exec_pty_gives_a_terminal() {
    let (_srv, port) = Cat::listen(&["-k", "--pty", "-c", "tty; test -t 0 && echo is-a-tty"]);
    let got = String::from_utf8_lossy(&read_all(&mut connect(port))).into_owned();
    assert!(got.starts_with("/dev/pts/"), "{got:?}");
    assert!(got.contains("is-a-tty"), "{got:?}");
}

#[test]
fn exec_udp_per_peer_child() {
    let (_srv, port) = Cat::listen(&["-u", "-k", "-c", "cat"]);
    let a = udp();
    let b = udp();
    a.send_to(b"from a\n", ("127.0.0.1", port)).unwrap();
    b.send_to(b"from b\n", ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 100];
    let (n, _) = a.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from a\n");
    let (n, _) = b.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from b\n");
}

/// Issue 17: `-k -e` started a child per connection with no practical cap.
/// As ncat, 100 at once by default; the 101st client is refused.
#[test]
fn exec_caps_children_at_ncats_default_of_100() {
    use std::io::Write;
    let (srv, port) = Cat::listen(&["-k", "-e", "/bin/cat"]);
    let mut held = Vec::new();
    for i in 0..100 {
        let mut s = connect(port);
        s.write_all(format!("{i}\n").as_bytes()).unwrap();
        // Its child is running: it echoes.
        assert_eq!(super::proc::read_line(&mut s), format!("{i}\n"));
        held.push(s);
    }
    let mut extra = connect(port);
    assert_eq!(read_all(&mut extra), b"", "the 101st client was served");
    srv.wait_stderr("too many clients", WAIT).expect("notice");
    drop(held);
}

/// `--lua-exec FILE` runs FILE with the system's Lua (lua5.4 here, which
/// scripts/test.sh installs) as `-e` runs a program: the connection on its
/// stdin and stdout, the NCAT_* variables set.
#[test]
fn lua_exec_runs_the_script_with_the_system_lua() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("echo.lua");
    std::fs::write(
        &script,
        "local line = io.read('l')\n\
         io.write('lua got ', line, ' from ', os.getenv('NCAT_REMOTE_ADDR'), ' over ', os.getenv('NCAT_PROTO'), '\\n')\n",
    )
    .unwrap();
    let (srv, port) = Cat::listen(&["--lua-exec", script.to_str().unwrap()]);
    let mut s = connect(port);
    s.write_all(b"hello\n").unwrap();
    let got = String::from_utf8(read_all(&mut s)).unwrap();
    assert_eq!(
        got,
        "lua got hello from 127.0.0.1 over TCP\n",
        "{}",
        srv.stderr()
    );
    let done = srv.wait(WAIT);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
}

/// Without a Lua interpreter on PATH, `--lua-exec` is one line naming what
/// to install, exit 2, and no socket (nothing listens); so is a script
/// that cannot be read.
#[test]
fn lua_exec_without_an_interpreter_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.lua");
    std::fs::write(&script, "print('hi')\n").unwrap();
    let port = super::free_port();
    let run = |path: &str, file: &std::path::Path| {
        std::process::Command::new(super::proc::bin())
            .args(["cat", "-v", "-l", "--lua-exec"])
            .arg(file)
            .args(["127.0.0.1", &port.to_string()])
            .env("PATH", path)
            .output()
            .unwrap()
    };
    let out = run(dir.path().to_str().unwrap(), &script);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("lua5.4"), "{err}");
    assert!(!err.contains("listening"), "{err}");
    let out = run(
        std::env::var("PATH").as_deref().unwrap_or("/usr/bin"),
        &dir.path().join("missing.lua"),
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("missing.lua"), "{err}");
}
