//! Sockets the services accept on.

use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};

/// A listener whose connections send small writes at once.
///
/// A live comment is one small WebSocket frame per subscriber. With Nagle's algorithm on, a
/// frame sent while the previous one is still unacknowledged is held back until the client's
/// ACK comes, which a delayed ACK can postpone by up to 40 ms on Linux. axum's `serve` leaves
/// the algorithm on; every HTTP and WebSocket server of Inkwire turns it off.
pub fn no_delay(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    listener.tap_io(set_no_delay as fn(&mut TcpStream))
}

fn set_no_delay(stream: &mut TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY refused on an accepted connection");
    }
}
