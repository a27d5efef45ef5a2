//! A passkey authenticator in software: it answers the server's WebAuthn options as a browser
//! and its authenticator would (an ES256 key, attestation "none", the user present and
//! verified), written out here from the WebAuthn specification, independently of the server's
//! library. The ceremonies then run without a browser; the browser test runs them with a real
//! one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Authenticator data flags: the user was present, the user was verified, a credential follows.
const USER_PRESENT: u8 = 0x01;
const USER_VERIFIED: u8 = 0x04;
const ATTESTED_CREDENTIAL: u8 = 0x40;

/// One credential on one authenticator, for one relying party, used from one origin.
pub(crate) struct SoftPasskey {
    rng: SystemRandom,
    key: EcdsaKeyPair,
    credential_id: Vec<u8>,
    rp_id: String,
    origin: String,
    counter: u32,
}

impl SoftPasskey {
    pub(crate) fn new(rp_id: &str, origin: &str) -> SoftPasskey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("a P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("the key reads back");
        let mut credential_id = vec![0; 16];
        rng.fill(&mut credential_id).expect("random bytes");
        SoftPasskey {
            rng,
            key,
            credential_id,
            rp_id: rp_id.to_owned(),
            origin: origin.to_owned(),
            counter: 0,
        }
    }

    /// The answer to `navigator.credentials.create()` with the server's `options` (its body,
    /// the options under `publicKey`): the `PublicKeyCredential` as a page sends it.
    pub(crate) fn register(&mut self, options: &Value) -> Value {
        let client_data = self.client_data("webauthn.create", options);
        let mut credential = vec![0; 16]; // AAGUID: none
        credential.extend(
            u16::try_from(self.credential_id.len())
                .expect("short")
                .to_be_bytes(),
        );
        credential.extend(&self.credential_id);
        credential.extend(self.cose_key());
        let flags = USER_PRESENT | USER_VERIFIED | ATTESTED_CREDENTIAL;
        let authenticator_data = self.authenticator_data(flags, &credential);
        let mut attestation = Vec::new();
        cbor_head(&mut attestation, 5, 3);
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        cbor_head(&mut attestation, 5, 0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &authenticator_data);
        json!({
            "id": URL_SAFE_NO_PAD.encode(&self.credential_id),
            "rawId": URL_SAFE_NO_PAD.encode(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": URL_SAFE_NO_PAD.encode(attestation),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data),
            },
            "extensions": {},
        })
    }

    /// The answer to `navigator.credentials.get()` with the server's `options`: an assertion
    /// signed with the credential's key, its counter one higher than the last.
    pub(crate) fn assert(&mut self, options: &Value) -> Value {
        let client_data = self.client_data("webauthn.get", options);
        self.counter += 1;
        let authenticator_data = self.authenticator_data(USER_PRESENT | USER_VERIFIED, &[]);
        let mut signed = authenticator_data.clone();
        signed.extend(Sha256::digest(client_data.as_bytes()));
        let signature = self.key.sign(&self.rng, &signed).expect("signs");
        json!({
            "id": URL_SAFE_NO_PAD.encode(&self.credential_id),
            "rawId": URL_SAFE_NO_PAD.encode(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": URL_SAFE_NO_PAD.encode(authenticator_data),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data),
                "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
                "userHandle": null,
            },
            "extensions": {},
        })
    }

    /// The client data a browser at `origin` makes for a ceremony of `kind`.
    fn client_data(&self, kind: &str, options: &Value) -> String {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .unwrap_or_else(|| panic!("no challenge in {options}"));
        json!({ "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false })
            .to_string()
    }

    /// The relying party's id hash, the flags, the counter, then `rest`.
    fn authenticator_data(&self, flags: u8, rest: &[u8]) -> Vec<u8> {
        let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend(self.counter.to_be_bytes());
        data.extend(rest);
        data
    }

    /// The public key as a COSE key: EC2, ES256, P-256, x and y.
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        assert_eq!((point.len(), point[0]), (65, 4), "an uncompressed point");
        let mut key = Vec::new();
        cbor_head(&mut key, 5, 5);
        for (label, value) in [(1, 2), (3, -7), (-1, 1)] {
            cbor_int(&mut key, label);
            cbor_int(&mut key, value);
        }
        cbor_int(&mut key, -2);
        cbor_bytes(&mut key, &point[1..33]);
        cbor_int(&mut key, -3);
        cbor_bytes(&mut key, &point[33..]);
        key
    }
}

/// A CBOR item's head: its major type and its length (or value).
fn cbor_head(out: &mut Vec<u8>, major: u8, length: usize) {
    let major = major << 5;
    match length {
        0..=23 => out.push(major | u8::try_from(length).expect("small")),
        24..=255 => out.extend([major | 24, u8::try_from(length).expect("a byte")]),
        _ => {
            out.push(major | 25);
            out.extend(u16::try_from(length).expect("short").to_be_bytes());
        }
    }
}

fn cbor_int(out: &mut Vec<u8>, value: i64) {
    match usize::try_from(value) {
        Ok(positive) => cbor_head(out, 0, positive),
        Err(_) => cbor_head(out, 1, usize::try_from(-1 - value).expect("small")),
    }
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    cbor_head(out, 2, bytes.len());
    out.extend(bytes);
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_head(out, 3, text.len());
    out.extend(text.as_bytes());
}
