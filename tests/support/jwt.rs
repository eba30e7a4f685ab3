//! JWTs made in the test: RS256 and ES256 keys generated on the spot, tokens signed
//! with them, their JWKS, and a JWKS server on 127.0.0.1 for `jwksUri`.

use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer as _};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;

use super::http::read_head;

/// A signing key of one algorithm, named by its `kid`.
pub enum Signer {
    Rs256 {
        kid: String,
        key: Box<RsaPrivateKey>,
    },
    Es256 {
        kid: String,
        key: Box<EcdsaKeyPair>,
    },
}

impl Signer {
    /// A new 2048-bit RSA key.
    pub fn rs256(kid: &str) -> Signer {
        let mut rng = rsa::rand_core::OsRng;
        let key = RsaPrivateKey::new(&mut rng, 2048).expect("an RSA key");
        Signer::Rs256 {
            kid: kid.into(),
            key: Box::new(key),
        }
    }

    /// A new P-256 key.
    pub fn es256(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("a P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("reads back");
        Signer::Es256 {
            kid: kid.into(),
            key: Box::new(key),
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        match self {
            Signer::Rs256 { kid, key } => json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
            }),
            Signer::Es256 { kid, key } => {
                // An uncompressed point: 0x04, x, y.
                let point = key.public_key().as_ref();
                json!({
                    "kty": "EC", "alg": "ES256", "use": "sig", "kid": kid, "crv": "P-256",
                    "x": b64(&point[1..33]), "y": b64(&point[33..65]),
                })
            }
        }
    }

    /// A compact JWS of `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let (alg, kid) = match self {
            Signer::Rs256 { kid, .. } => ("RS256", kid),
            Signer::Es256 { kid, .. } => ("ES256", kid),
        };
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match self {
            Signer::Rs256 { key, .. } => {
                let signer = SigningKey::<Sha256>::new((**key).clone());
                signer.sign(input.as_bytes()).to_vec()
            }
            Signer::Es256 { key, .. } => key
                .sign(&SystemRandom::new(), input.as_bytes())
                .expect("signs")
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }
}

/// A JWKS document of these keys' public halves.
pub fn jwks(signers: &[&Signer]) -> String {
    let keys: Vec<Value> = signers.iter().map(|s| s.jwk()).collect();
    json!({ "keys": keys }).to_string()
}

/// Claims for `iss` / `sub` / `aud`, valid for the next hour, plus `extra`.
pub fn claims(iss: &str, sub: &str, aud: &str, extra: Value) -> Value {
    let now = now();
    let mut c = json!({"iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + 3600});
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    c
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Serves one JWKS document at every path of 127.0.0.1:`port`, counting requests;
/// stops on drop.
pub struct JwksServer {
    port: u16,
    hits: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl JwksServer {
    pub fn start(body: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the JWKS server");
        let port = listener.local_addr().expect("bound").port();
        let hits = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, body) = (h.clone(), body.clone());
                thread::spawn(move || {
                    let mut reader = BufReader::new(conn);
                    while let Ok(Some(_)) = read_head(&mut reader) {
                        h.fetch_add(1, Ordering::Relaxed);
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if reader.get_mut().write_all(response.as_bytes()).is_err() {
                            break;
                        }
                    }
                    let _ = reader.get_mut().shutdown(Shutdown::Both);
                });
            }
        });
        JwksServer { port, hits, stop }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Requests answered so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
