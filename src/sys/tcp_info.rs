//! The one `getsockopt(TCP_INFO)` sockeye needs: the peer's advertised
//! receive window, which tells a peer that stopped reading (window zero)
//! from one that is reading over a slow or lossy path (window open, bytes
//! merely in flight).
//!
//! Why `unsafe`: none of nix 0.31, socket2 0.6 or rustix 1.1 exposes
//! `TCP_INFO`, so the call goes through `libc::getsockopt` with a pointer
//! to a zeroed `tcp_info`. The kernel writes at most `len` bytes into it and
//! says how many it wrote; fields past that (older kernels) are not read.

#![allow(unsafe_code)]

use std::mem::{MaybeUninit, offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd};

use nix::libc;

/// The window the peer last advertised, in bytes (after scaling); `None`
/// when the socket is not TCP or the kernel is too old to report it (its
/// `tcp_info` ends before `tcpi_snd_wnd`).
pub fn peer_window(sock: &impl AsFd) -> Option<u32> {
    let fd = sock.as_fd().as_raw_fd();
    let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `fd` is a descriptor borrowed for the duration of the call;
    // `info` points to `len` writable bytes, and the kernel writes no more
    // than `len` bytes and stores the count in `len`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    // SAFETY: `tcp_info` is plain integers, and `zeroed` initialised every
    // byte the kernel did not write.
    let info = unsafe { info.assume_init() };
    let end = offset_of!(libc::tcp_info, tcpi_snd_wnd) + size_of::<u32>();
    (len as usize >= end).then_some(info.tcpi_snd_wnd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn window_closes_when_the_peer_stops_reading() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_recv_buffer_size(4096).unwrap();
            s.connect(&listener.local_addr().unwrap().into()).unwrap();
            TcpStream::from(s)
        };
        let (mut ours, _) = listener.accept().unwrap();
        let open = peer_window(&ours).expect("this kernel reports tcpi_snd_wnd");
        assert!(open > 0);
        // The peer never reads: fill its window, and ours, bounded.
        ours.set_nonblocking(true).unwrap();
        let chunk = [0u8; 16 * 1024];
        for _ in 0..4096 {
            match ours.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        // The zero window arrives with the peer's last ACK: wait (bounded).
        let closed = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            peer_window(&ours) == Some(0)
        });
        assert!(closed, "window still {:?}", peer_window(&ours));
        drop(peer);
        // Not a TCP socket: no window.
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(peer_window(&udp), None);
    }
}
