//! The exec-credential parser: a plugin's stdout of any bytes, for both API versions. A
//! token never appears in an error (except inside a field the error quotes: apiVersion,
//! kind, expirationTimestamp, or the configured apiVersion).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for api_version in [
        "client.authentication.k8s.io/v1",
        "client.authentication.k8s.io/v1beta1",
    ] {
        match engine::kubeconfig::check_exec_credential(api_version, data) {
            Ok((token, cert)) => assert!(token || cert, "accepted a credential with neither"),
            Err(e) => {
                // The configured version is named unquoted; remove it too.
                let mut message = e.to_string().replace(api_version, "");
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
                    // The fields an error may quote (the token's text can be inside them).
                    for field in ["/apiVersion", "/kind", "/status/expirationTimestamp"] {
                        if let Some(text) = v.pointer(field).and_then(|t| t.as_str()) {
                            message = message.replace(&format!("{text:?}"), "");
                        }
                    }
                    if let Some(token) = v.pointer("/status/token").and_then(|t| t.as_str()) {
                        // A '#' appears in none of the engine's own message texts, so a
                        // token with one cannot match them by chance.
                        if token.len() >= 8 && token.contains('#') {
                            assert!(!message.contains(token), "the error quotes the token");
                        }
                    }
                }
            }
        }
    }
});
