//! A throwaway PKI for TLS tests: one CA, and server and client certificates it signs
//! (with `rcgen`), written as PEM files into a temporary folder.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use tempfile::TempDir;

pub struct Pki {
    dir: TempDir,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, as files.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// A fresh CA, written as `ca.pem`.
    pub fn new() -> Pki {
        let dir = TempDir::new().expect("tempdir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "coalmine test CA");
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write CA");
        Pki {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, file: &str, names: &[&str]) -> Pair {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("server params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.write(file, params)
    }

    /// A client certificate with these DNS names and URIs.
    pub fn client(&self, file: &str, dns: &[&str], uris: &[&str]) -> Pair {
        let names: Vec<String> = dns.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("client params");
        for uri in uris {
            let uri = rcgen::string::Ia5String::try_from(uri.to_string()).expect("ASCII URI");
            params.subject_alt_names.push(SanType::URI(uri));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.write(file, params)
    }

    fn write(&self, file: &str, params: CertificateParams) -> Pair {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let pair = Pair {
            cert: self.dir.path().join(format!("{file}.pem")),
            key: self.dir.path().join(format!("{file}.key")),
        };
        std::fs::write(&pair.cert, cert.pem()).expect("write cert");
        std::fs::write(&pair.key, key.serialize_pem()).expect("write key");
        pair
    }
}

/// The text of a PEM file.
pub fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).expect("read PEM")
}

/// A `kubernetes.io/tls` Secret document holding `pair` (and a CA) as `stringData`.
pub fn secret_yaml(name: &str, pair: &Pair, ca: Option<&str>) -> String {
    let indent = |pem: &str| pem.trim_end().replace('\n', "\n    ");
    let ca = ca
        .map(|ca| format!("  ca.crt: |\n    {}\n", indent(ca)))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: kubernetes.io/tls\n\
         stringData:\n  tls.crt: |\n    {}\n  tls.key: |\n    {}\n{ca}",
        indent(&read(&pair.cert)),
        indent(&read(&pair.key))
    )
}
