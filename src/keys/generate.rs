//! Key generation and loading, through OpenSSL (josekit). Never the `rsa` crate.

use josekit::jwk::Jwk;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, PS256, RS256};

use crate::config::SigningAlgorithm;

/// A fresh key pair: PKCS#8 DER private key and the public JWK (with `kid`, `use`, `alg`).
pub struct Generated {
    pub private_der: Vec<u8>,
    pub public_jwk: Jwk,
}

pub fn generate(alg: SigningAlgorithm, kid: &str) -> Result<Generated, josekit::JoseError> {
    use josekit::jwk::KeyPair as _;
    let (private_der, mut public_jwk) = match alg {
        SigningAlgorithm::RS256 => {
            let k = RS256.generate_key_pair(2048)?;
            (k.to_der_private_key(), k.to_jwk_public_key())
        }
        SigningAlgorithm::PS256 => {
            // A plain RSA key (rsaEncryption), which every PS256 verifier accepts.
            let k = RS256.generate_key_pair(2048)?;
            (k.to_der_private_key(), k.to_jwk_public_key())
        }
        SigningAlgorithm::ES256 => {
            let k = ES256.generate_key_pair()?;
            (k.to_der_private_key(), k.to_jwk_public_key())
        }
        SigningAlgorithm::EdDSA => {
            let k = EdDSA.generate_key_pair(EdCurve::Ed25519)?;
            (k.to_der_private_key(), k.to_jwk_public_key())
        }
    };
    public_jwk.set_key_id(kid);
    public_jwk.set_key_use("sig");
    public_jwk.set_algorithm(alg.as_str());
    Ok(Generated {
        private_der,
        public_jwk,
    })
}

/// The public JWK (with a `kid` derived from it, `use` and `alg`) of a PKCS#8 private key.
pub fn public_jwk(alg: SigningAlgorithm, private_der: &[u8]) -> Result<Jwk, josekit::JoseError> {
    use josekit::jwk::KeyPair as _;
    let mut jwk = match alg {
        SigningAlgorithm::RS256 | SigningAlgorithm::PS256 => {
            RS256.key_pair_from_der(private_der)?.to_jwk_public_key()
        }
        SigningAlgorithm::ES256 => ES256.key_pair_from_der(private_der)?.to_jwk_public_key(),
        SigningAlgorithm::EdDSA => EdDSA.key_pair_from_der(private_der)?.to_jwk_public_key(),
    };
    let kid = crate::secret::b64url(&crate::secret::sha256(jwk.to_string().as_bytes())[..12]);
    jwk.set_key_id(kid);
    jwk.set_key_use("sig");
    jwk.set_algorithm(alg.as_str());
    Ok(jwk)
}

pub type Signer = Box<dyn JwsSigner>;
pub type Verifier = Box<dyn JwsVerifier>;

/// Builds the signer (from the private DER) and verifier (from the public JWK) once, at load.
pub fn load(
    alg: SigningAlgorithm,
    kid: &str,
    private_der: &[u8],
    public_jwk: &Jwk,
) -> Result<(Signer, Verifier), josekit::JoseError> {
    Ok(match alg {
        SigningAlgorithm::RS256 => {
            let mut s = RS256.signer_from_der(private_der)?;
            s.set_key_id(kid);
            (Box::new(s), Box::new(RS256.verifier_from_jwk(public_jwk)?))
        }
        SigningAlgorithm::PS256 => {
            let mut s = PS256.signer_from_der(private_der)?;
            s.set_key_id(kid);
            (Box::new(s), Box::new(PS256.verifier_from_jwk(public_jwk)?))
        }
        SigningAlgorithm::ES256 => {
            let mut s = ES256.signer_from_der(private_der)?;
            s.set_key_id(kid);
            (Box::new(s), Box::new(ES256.verifier_from_jwk(public_jwk)?))
        }
        SigningAlgorithm::EdDSA => {
            let mut s = EdDSA.signer_from_der(private_der)?;
            s.set_key_id(kid);
            (Box::new(s), Box::new(EdDSA.verifier_from_jwk(public_jwk)?))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_after_a_reload() {
        for alg in SigningAlgorithm::ALL {
            let g = generate(alg, "k").expect("generate");
            assert_eq!(g.public_jwk.algorithm(), Some(alg.as_str()));
            assert!(
                g.public_jwk.parameter("d").is_none(),
                "{alg:?} JWK leaks private part"
            );
            let (signer, verifier) = load(alg, "k", &g.private_der, &g.public_jwk).expect("load");
            let sig = signer.sign(b"message").expect("sign");
            verifier.verify(b"message", &sig).expect("verify");
            assert!(verifier.verify(b"tampered", &sig).is_err());
        }
    }
}
