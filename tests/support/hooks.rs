//! A test webhook server on 127.0.0.1: answers 200 to every request and records each
//! one's path and JSON body (Flagger's load tester, alert receivers).

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::http::{read_body, read_head, wants_close};

/// An HTTP server answering 200 to everything, recording each request's
/// `(path, JSON body)`: the tutorials' load tester.
pub struct Hooks {
    port: u16,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Hooks {
    pub fn start() -> Hooks {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook server");
        let port = listener.local_addr().expect("addr").port();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let c = c.clone();
                std::thread::spawn(move || serve(stream, &c));
            }
        });
        Hooks { port, calls }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The JSON bodies received, in order (Flagger's payload carries no hook name: its
    /// `type` and `metadata.cmd` tell the tutorial's hooks apart).
    pub fn bodies(&self) -> Vec<Value> {
        let calls = self.calls.lock().unwrap();
        calls.iter().map(|(_, b)| b.clone()).collect()
    }

    /// Every `(path, JSON body)` received, in order.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, calls: &Mutex<Vec<(String, Value)>>) {
    let mut out = stream.try_clone().expect("clone stream");
    let mut r = BufReader::new(stream);
    while let Ok(Some((start, headers))) = read_head(&mut r) {
        let Ok(body) = read_body(&mut r, &headers, false) else {
            return;
        };
        let path = start.split_whitespace().nth(1).unwrap_or("").to_string();
        let body: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        calls.lock().unwrap().push((path, body));
        let reply = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if out.write_all(reply.as_bytes()).is_err() || wants_close(&start, &headers) {
            return;
        }
    }
}
