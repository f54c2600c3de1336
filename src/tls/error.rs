//! [`TlsError`]: what failed in TLS, carried inside the `io::Error` the TLS
//! calls return; and the wording of the handshake's other failures.

use std::fmt;
use std::io;

use rustls::AlertDescription;

/// A TLS failure reported by rustls, inside the [`io::Error`] (of kind
/// `InvalidData`) that a handshake, read or write returns:
/// `err.get_ref().and_then(|e| e.downcast_ref::<TlsError>())`.
///
/// Its message names what failed: our check of the peer's certificate
/// (unknown issuer, name mismatch, expiry), the peer's refusal of ours (a
/// certificate alert), no common ALPN protocol, or a protocol error (bytes
/// that are not TLS, a corrupt or unexpected message), and whether it
/// happened in the handshake or later.
///
/// # Examples
///
/// ```
/// use std::io;
/// use ringloop::tls::TlsError;
///
/// fn is_certificate_failure(e: &io::Error) -> bool {
///     e.get_ref()
///         .and_then(|e| e.downcast_ref::<TlsError>())
///         .is_some_and(TlsError::is_certificate_error)
/// }
/// # assert!(!is_certificate_failure(&io::Error::other("x")));
/// ```
#[derive(Debug)]
pub struct TlsError {
    handshake: bool,
    error: rustls::Error,
}

/// What a rustls error says failed, in a few words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// We refused the peer's certificate (or it sent none).
    PeerCertificate,
    /// The peer refused ours (a certificate alert).
    OurCertificate,
    /// No application protocol (ALPN) in common.
    Alpn,
    /// The peer sent a fatal alert of another kind.
    Alert,
    /// Corrupt, unexpected or non-TLS bytes; a peer breaking the protocol.
    Protocol,
    /// Configuration, randomness, clock.
    Local,
}

fn classify(e: &rustls::Error) -> Class {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(_) | E::NoCertificatesPresented | E::InvalidCertRevocationList(_) => {
            Class::PeerCertificate
        }
        E::NoApplicationProtocol | E::AlertReceived(AlertDescription::NoApplicationProtocol) => {
            Class::Alpn
        }
        E::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateRequired
            | AlertDescription::AccessDenied,
        ) => Class::OurCertificate,
        E::AlertReceived(_) => Class::Alert,
        E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::InvalidMessage(_)
        | E::InvalidEncryptedClientHello(_)
        | E::DecryptError
        | E::PeerIncompatible(_)
        | E::PeerMisbehaved(_)
        | E::PeerSentOversizedRecord
        | E::UnsupportedNameType => Class::Protocol,
        _ => Class::Local,
    }
}

impl TlsError {
    pub(crate) fn new(handshake: bool, error: rustls::Error) -> TlsError {
        TlsError { handshake, error }
    }

    /// The error rustls reported.
    pub fn rustls_error(&self) -> &rustls::Error {
        &self.error
    }

    /// Whether it happened during the handshake (else on an established
    /// session: a record that would not decrypt, an alert).
    pub fn is_handshake_error(&self) -> bool {
        self.handshake
    }

    /// Whether a certificate was refused: the peer's by our verifier
    /// (unknown issuer, a name it is not valid for, expired), or ours by the
    /// peer (it sent a certificate alert such as `UnknownCA`).
    pub fn is_certificate_error(&self) -> bool {
        matches!(
            classify(&self.error),
            Class::PeerCertificate | Class::OurCertificate
        )
    }

    /// Whether the peer broke the protocol: bytes that are not TLS, a
    /// corrupt, unexpected or undecryptable message.
    pub fn is_protocol_error(&self) -> bool {
        classify(&self.error) == Class::Protocol
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.handshake {
            "TLS handshake failed: "
        } else {
            "TLS session failed: "
        })?;
        let e = &self.error;
        match classify(e) {
            Class::PeerCertificate => write!(f, "the peer's certificate was refused: {e}"),
            Class::OurCertificate => write!(f, "the peer refused our certificate: {e}"),
            Class::Alpn => write!(f, "no application protocol (ALPN) in common: {e}"),
            Class::Alert => write!(f, "the peer aborted: {e}"),
            Class::Protocol => {
                write!(f, "protocol error: {e}")?;
                if self.handshake
                    && matches!(
                        e,
                        rustls::Error::InvalidMessage(
                            rustls::InvalidMessage::InvalidContentType
                                | rustls::InvalidMessage::UnknownProtocolVersion
                        )
                    )
                {
                    f.write_str(" (the peer does not seem to speak TLS)")?;
                }
                Ok(())
            }
            Class::Local => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The `io::Error` for a rustls failure.
pub(crate) fn tls_error(handshake: bool, error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TlsError::new(handshake, error))
}

/// The peer's end of stream (a TCP FIN, or a `close_notify`) before the
/// handshake finished.
pub(crate) fn closed_in_handshake(received: u64, close_notify: bool) -> io::Error {
    let how = if close_notify {
        "sent close_notify"
    } else {
        "closed the connection"
    };
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "TLS handshake failed: the peer {how} during the TLS handshake \
             (after {received} bytes from it)"
        ),
    )
}

/// A transport failure during the handshake: the same kind (and errno,
/// when it has one, in the message), with the handshake named.
pub(crate) fn transport_in_handshake(e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("TLS handshake failed: the connection failed: {e}"),
    )
}

/// Another `io::Error` like `e` (which is not `Clone`): a failure that
/// every later call reports again.
pub(crate) fn again(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_failed() {
        let cert = tls_error(
            true,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(cert.kind(), io::ErrorKind::InvalidData);
        let s = cert.to_string();
        assert!(s.contains("handshake") && s.contains("certificate"), "{s}");
        let t = cert.get_ref().unwrap().downcast_ref::<TlsError>().unwrap();
        assert!(t.is_certificate_error() && !t.is_protocol_error());

        let theirs = TlsError::new(
            true,
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
        );
        assert!(theirs.is_certificate_error());
        assert!(theirs.to_string().contains("refused our certificate"));

        let garbage = TlsError::new(
            true,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        assert!(garbage.is_protocol_error());
        assert!(garbage.to_string().contains("does not seem to speak TLS"));

        let eof = closed_in_handshake(3, false);
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            eof.to_string()
                .contains("closed the connection during the TLS handshake")
        );
    }
}
