//! Reaching a PostgreSQL server from a `postgres://` URL given on the command
//! line: for `audit --app-db` (the app's database) and for `--db` (the tool's
//! own store in PostgreSQL).
//!
//! A [`Target`] is everything known before connecting: the URL parsed, with
//! libpq's `sslmode` (disable, prefer, require, verify-ca, verify-full) and
//! `sslrootcert`, which tokio-postgres does not know, taken out first; the
//! TLS it asks for (rustls with ring); the connect timeout (libpq's
//! `connect_timeout`, 10 s when the URL gives none), which also bounds TLS
//! and authentication. [`Target::connect`] connects and says, when it cannot,
//! what went wrong, where (`host:port`) and which flag to fix.
//!
//! No message ever holds a password: URLs are shown through [`shown`], which
//! masks the password of the user part and any `password=` / `sslpassword=`
//! parameter, and tokio-postgres's errors never name it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::{DbError, SqlState};
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `connect_timeout` when the URL gives none; it also bounds TLS
/// and authentication, so a server that accepts and then stays silent fails too.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `s` is a PostgreSQL URL: `postgres://...` or `postgresql://...`.
pub(crate) fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// `url` as it may be shown: without its password.
///
/// Everything between the first `:` of the user part and the last `@` is
/// masked (a password with an unencoded `@`, `/` or `?` is still hidden),
/// and so is the value of any `password=` / `sslpassword=` parameter.
pub(crate) fn shown(url: &str) -> String {
    mask_params(&mask_userinfo(url))
}

fn mask_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[start..];
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..start], &rest[..colon], &rest[at..]),
        None => url.to_owned(),
    }
}

fn mask_params(text: &str) -> String {
    const KEY: &str = "password=";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(found) = lower[from..].find(KEY) {
        let value_start = from + found + KEY.len();
        let value_end = text[value_start..]
            .find(|c: char| c == '&' || c.is_whitespace())
            .map_or(text.len(), |i| value_start + i);
        out.push_str(&text[from..value_start]);
        out.push_str("***");
        from = value_end;
    }
    out.push_str(&text[from..]);
    out
}

/// Everything about one `postgres://` URL that is known before connecting.
pub(crate) struct Target {
    config: Config,
    tls: Tls,
    /// The flag that gave the URL, as the messages name it (`--app-db`).
    flag: &'static str,
    /// What the server is to the user, as the messages name it.
    what: &'static str,
    /// The URL without its password.
    shown: String,
    /// `host:port` as the messages name it.
    place: String,
    deadline: Duration,
}

impl Target {
    /// Read `url`, given with `flag`; the connection introduces itself to
    /// the server as `application_name` unless the URL names one. A URL
    /// that cannot be read is a usage error naming `flag`.
    pub(crate) fn parse(
        url: &str,
        flag: &'static str,
        application_name: &str,
    ) -> anyhow::Result<Target> {
        let shown = shown(url);
        let (rest, tls) =
            Tls::split(url).map_err(|why| crate::usage(format!("{flag} {shown}: {why}")))?;
        let mut config: Config = rest.parse().map_err(|e: tokio_postgres::Error| {
            crate::usage(format!(
                "{flag} {shown} is not a valid PostgreSQL URL ({}); the form is \
                 postgres://USER:PASSWORD@HOST:PORT/DB",
                chain(&e)
            ))
        })?;
        config.ssl_mode(match tls.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        });
        if config.get_application_name().is_none() {
            config.application_name(application_name);
        }
        let deadline = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT);
        config.connect_timeout(deadline);
        let ports = config.get_ports();
        let place = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match host {
                    Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                    Host::Tcp(name) => format!("{name}:{port}"),
                    Host::Unix(dir) => format!("{}:{port}", dir.display()),
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        Ok(Target {
            config,
            tls,
            flag,
            what: "the database",
            shown,
            place,
            deadline,
        })
    }

    /// How the messages name the server ("the app database"); "the
    /// database" unless told.
    pub(crate) fn called(mut self, what: &'static str) -> Target {
        self.what = what;
        self
    }

    /// The URL without its password.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// `host:port` (several, comma-separated, when the URL names several hosts).
    pub(crate) fn place(&self) -> &str {
        &self.place
    }

    /// Connect, with TLS as `sslmode` says, within the deadline, and spawn
    /// the connection on the current tokio runtime: it runs until the
    /// client is dropped (then it says goodbye to the server and ends).
    pub(crate) async fn connect(&self) -> anyhow::Result<Client> {
        let connector = self.tls.connector(self.flag)?;
        let (client, connection) =
            match tokio::time::timeout(self.deadline, self.config.connect(connector)).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Err(self.connect_failed(&e)),
                Err(_) => bail!(
                    "cannot reach {} at {}: no answer within {} s; check that the server runs \
                     and accepts connections from here, and the host and port in {} {}",
                    self.what,
                    self.place,
                    self.deadline.as_secs(),
                    self.flag,
                    self.shown
                ),
            };
        tokio::spawn(connection);
        Ok(client)
    }

    fn connect_failed(&self, e: &tokio_postgres::Error) -> anyhow::Error {
        let (what, place, flag, shown) = (self.what, &self.place, self.flag, &self.shown);
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            {
                let user = self.config.get_user().unwrap_or("(none)");
                return anyhow!(
                    "authentication failed at {place} for user `{user}`: {}; check the user \
                     and password in {flag} {shown}",
                    db.message()
                );
            }
            return anyhow!(
                "{what} at {place} refused the connection: {}; check {flag} {shown}",
                with_detail(db)
            );
        }
        let why = chain(e);
        if why.contains("password missing") {
            return anyhow!(
                "authentication failed at {place}: the server asks for a password and \
                 {flag} {shown} has none; give postgres://USER:PASSWORD@..."
            );
        }
        if why.contains("TLS") || why.contains("tls") {
            return anyhow!(
                "TLS with {what} at {place} failed: {why}; check sslmode in {flag} {shown}"
            );
        }
        anyhow!(
            "cannot reach {what} at {place}: {why}; check that the server runs and the host \
             and port in {flag} {shown}"
        )
    }
}

/// PostgreSQL's message, with its detail and hint when it gives them.
pub(crate) fn with_detail(db: &DbError) -> String {
    let mut text = db.message().to_owned();
    if let Some(detail) = db.detail() {
        text.push_str(&format!(" (detail: {detail})"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!(" (hint: {hint})"));
    }
    text
}

/// tokio-postgres's Display names only the kind ("error connecting to
/// server"); the cause is in `source()`. Neither ever holds the password.
pub(crate) fn chain(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// libpq's `sslmode`. tokio-postgres knows only disable, prefer and
/// require, so the URL's `sslmode` and `sslrootcert` are read here and
/// taken out before its parser sees the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, else plain; no certificate check.
    Prefer,
    /// TLS, no certificate check (unless `sslrootcert` is given: then as verify-ca).
    Require,
    /// TLS, the certificate chains to a trusted root; any host name.
    VerifyCa,
    /// TLS, the certificate chains to a trusted root and names the host.
    VerifyFull,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tls {
    mode: Mode,
    /// `sslrootcert`: a PEM file of trusted roots, or `system`.
    root_cert: Option<String>,
}

impl Tls {
    /// The URL without `sslmode` and `sslrootcert`, and what they said.
    fn split(url: &str) -> Result<(String, Tls), String> {
        let mut tls = Tls {
            mode: Mode::Prefer,
            root_cert: None,
        };
        let Some((base, params)) = url.split_once('?') else {
            return Ok((url.to_owned(), tls));
        };
        let mut kept = Vec::new();
        for param in params.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key {
                "sslmode" => {
                    tls.mode = match percent_decode(value).as_str() {
                        "disable" => Mode::Disable,
                        "prefer" => Mode::Prefer,
                        "require" => Mode::Require,
                        "verify-ca" => Mode::VerifyCa,
                        "verify-full" => Mode::VerifyFull,
                        other => {
                            return Err(format!(
                                "sslmode={other} is not supported; give disable, prefer, \
                                 require, verify-ca or verify-full"
                            ));
                        }
                    }
                }
                "sslrootcert" => tls.root_cert = Some(percent_decode(value)),
                _ => kept.push(param),
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((rest, tls))
    }

    /// libpq's `require` with a root certificate behaves as verify-ca.
    fn effective_mode(&self) -> Mode {
        match (self.mode, &self.root_cert) {
            (Mode::Require, Some(_)) => Mode::VerifyCa,
            (mode, _) => mode,
        }
    }

    /// The TLS connector of the mode; `flag` names the URL's flag in errors.
    fn connector(&self, flag: &str) -> anyhow::Result<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .with_context(|| format!("cannot set up TLS for {flag}"))?;
        let config = match self.effective_mode() {
            Mode::Disable | Mode::Prefer | Mode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verify::Nothing(provider)))
                .with_no_client_auth(),
            Mode::VerifyCa => {
                let chain = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.roots()?),
                    provider,
                )
                .build()
                .with_context(|| format!("cannot set up certificate checks for {flag}"))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verify::ChainOnly(chain)))
                    .with_no_client_auth()
            }
            Mode::VerifyFull => builder
                .with_root_certificates(self.roots()?)
                .with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// The roots a certificate must chain to: the `sslrootcert` file
    /// alone when given (as libpq), else the Mozilla roots.
    fn roots(&self) -> anyhow::Result<rustls::RootCertStore> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;

        let path = match self.root_cert.as_deref() {
            None | Some("system") => {
                return Ok(rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                });
            }
            Some(path) => path,
        };
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                anyhow!(
                    "sslrootcert {path}: cannot read certificates from it ({e}); give a PEM \
                     file of the CA that signed the server's certificate"
                )
            })?;
        let (_, rejected) = roots.add_parsable_certificates(certs);
        if roots.is_empty() {
            bail!(
                "sslrootcert {path}: no usable certificate in it ({rejected} rejected); give \
                 a PEM file of the CA that signed the server's certificate"
            );
        }
        Ok(roots)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Certificate checks for the modes that libpq defines with less than full verification.
mod verify {
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

    use super::Arc;

    /// prefer / require: encrypted, but any certificate (libpq's meaning).
    #[derive(Debug)]
    pub(super) struct Nothing(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for Nothing {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// verify-ca: the chain is checked, the host name is not.
    #[derive(Debug)]
    pub(super) struct ChainOnly(pub(super) Arc<WebPkiServerVerifier>);

    impl ServerCertVerifier for ChainOnly {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            // The name is checked only after the chain has passed.
            match self.0.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, Tls) {
        Tls::split(url).unwrap()
    }

    #[test]
    fn sslmode_defaults_to_prefer_and_leaves_the_url_alone() {
        let (rest, tls) = split("postgres://app:pw@db:5432/app");
        assert_eq!(rest, "postgres://app:pw@db:5432/app");
        assert_eq!(
            tls,
            Tls {
                mode: Mode::Prefer,
                root_cert: None
            }
        );
    }

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_the_url() {
        let (rest, tls) = split(
            "postgres://app:pw@db/app?application_name=x&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
        );
        assert_eq!(
            rest,
            "postgres://app:pw@db/app?application_name=x&connect_timeout=3"
        );
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.root_cert.as_deref(), Some("/etc/ca.pem"));
        let (rest, tls) = split("postgresql://db/app?sslmode=verify-ca");
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgresql://db/app", Mode::VerifyCa)
        );
    }

    #[test]
    fn every_libpq_sslmode_but_allow_is_read() {
        for (name, mode) in [
            ("disable", Mode::Disable),
            ("prefer", Mode::Prefer),
            ("require", Mode::Require),
            ("verify-ca", Mode::VerifyCa),
            ("verify-full", Mode::VerifyFull),
        ] {
            let (_, tls) = split(&format!("postgres://db/app?sslmode={name}"));
            assert_eq!(tls.mode, mode, "{name}");
            assert_eq!(tls.effective_mode(), mode, "{name}");
            tls.connector("--app-db").unwrap();
        }
        let err = Tls::split("postgres://db/app?sslmode=allow").unwrap_err();
        assert!(err.contains("sslmode=allow is not supported"), "{err}");
        assert!(err.contains("verify-full"), "{err}");
    }

    #[test]
    fn require_with_a_root_certificate_is_verify_ca_as_in_libpq() {
        let (_, tls) = split("postgres://db/app?sslmode=require&sslrootcert=/x.pem");
        assert_eq!(tls.effective_mode(), Mode::VerifyCa);
    }

    #[test]
    fn a_missing_root_certificate_file_is_named() {
        let (_, tls) = split("postgres://db/app?sslmode=verify-full&sslrootcert=/no/such.pem");
        let err = tls.connector("--app-db").err().unwrap().to_string();
        assert!(
            err.starts_with("sslrootcert /no/such.pem: cannot read"),
            "{err}"
        );
    }

    #[test]
    fn the_url_parser_sees_no_ssl_parameter_it_cannot_read() {
        let target = Target::parse(
            "postgres://app:pw@db.internal:6543/app?sslmode=verify-full",
            "--app-db",
            "stripe-sync audit",
        )
        .unwrap();
        assert_eq!(target.place, "db.internal:6543");
        assert_eq!(target.deadline, CONNECT_TIMEOUT);
        let target = Target::parse(
            "postgres://app@db/app?connect_timeout=2",
            "--app-db",
            "stripe-sync audit",
        )
        .unwrap();
        assert_eq!(
            (target.place.as_str(), target.deadline),
            ("db:5432", Duration::from_secs(2))
        );
    }

    #[test]
    fn a_bad_url_is_a_usage_error_without_the_password() {
        let err = Target::parse(
            "postgres://app:hunter2@db/app?port=x",
            "--app-db",
            "stripe-sync audit",
        )
        .err()
        .unwrap();
        let text = format!("{err:#}");
        assert!(text.contains("is not a valid PostgreSQL URL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(matches!(
            err.downcast_ref::<crate::Fatal>(),
            Some(crate::Fatal::Usage(_))
        ));
    }

    #[test]
    fn shown_hides_passwords() {
        for (url, want) in [
            (
                "postgres://app:hunter2@127.0.0.1:5432/db",
                "postgres://app:***@127.0.0.1:5432/db",
            ),
            ("postgresql://app@db/app", "postgresql://app@db/app"),
            (
                "postgres://db/app?sslmode=require",
                "postgres://db/app?sslmode=require",
            ),
            (
                "postgres://app:p@ss/w?rd@db/app",
                "postgres://app:***@db/app",
            ),
            (
                "postgres://app:p%40ss@db/app?sslmode=disable",
                "postgres://app:***@db/app?sslmode=disable",
            ),
            (
                "postgres://db/app?user=app&password=hunter2&sslmode=disable",
                "postgres://db/app?user=app&password=***&sslmode=disable",
            ),
            (
                "postgres://db/app?sslpassword=hunter2",
                "postgres://db/app?sslpassword=***",
            ),
            (
                "host=db PASSWORD=hunter2 dbname=app",
                "host=db PASSWORD=*** dbname=app",
            ),
            ("sqlite:/var/app.db", "sqlite:/var/app.db"),
        ] {
            assert_eq!(shown(url), want, "{url}");
        }
    }

    #[test]
    fn only_postgres_schemes_are_urls() {
        assert!(is_url("postgres://app@db/app") && is_url("postgresql://db/app"));
        for other in [
            "sqlite:/var/app.db",
            "mysql://db/app",
            "host=db dbname=app",
            "",
        ] {
            assert!(!is_url(other), "{other}");
        }
    }

    #[test]
    fn the_application_name_is_the_url_s_or_the_given_one() {
        let target = Target::parse("postgres://db/app", "--db", "stripe-sync").unwrap();
        assert_eq!(target.config.get_application_name(), Some("stripe-sync"));
        let target = Target::parse(
            "postgres://db/app?application_name=x",
            "--db",
            "stripe-sync",
        )
        .unwrap();
        assert_eq!(target.config.get_application_name(), Some("x"));
    }

    #[tokio::test]
    async fn messages_name_the_given_flag_without_the_password() {
        let err = Target::parse("postgres://app:hunter2@db/app?sslmode=allow", "--db", "x")
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("--db postgres://app:***@db/app?sslmode=allow: sslmode=allow"),
            "{err}"
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = format!("postgres://app:hunter2@127.0.0.1:{port}/app");
        let target = Target::parse(&url, "--db", "x").unwrap();
        assert_eq!(
            (target.shown(), target.place()),
            (
                format!("postgres://app:***@127.0.0.1:{port}/app").as_str(),
                format!("127.0.0.1:{port}").as_str()
            )
        );
        let text = format!("{:#}", target.connect().await.err().unwrap());
        assert!(
            text.starts_with(&format!("cannot reach the database at 127.0.0.1:{port}: ")),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                "; check that the server runs and the host and port in --db \
                 postgres://app:***@127.0.0.1:{port}/app"
            )),
            "{text}"
        );
        let text = format!(
            "{:#}",
            target.called("the store").connect().await.err().unwrap()
        );
        assert!(text.starts_with("cannot reach the store at "), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
