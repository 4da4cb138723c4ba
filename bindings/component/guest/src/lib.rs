//! The tokenwell engine as WebAssembly components, described by the WIT
//! package `tokenwell:client` in the repository's `wit/` folder.
//!
//! One crate, two components, chosen by feature (enable exactly one):
//!
//! - `engine`: world `engine-component`. Exports the sans-IO token cache as
//!   the `token-cache` resource and imports nothing: the host brings HTTP, the
//!   clock and the entropy.
//! - `provider`: world `provider-component`. Exports `get-token`, driving the
//!   engine over `wasi:http/outgoing-handler` with the wall clock and
//!   `wasi:random` entropy, configured from `wasi:cli/environment` or by
//!   `configure`.
//!
//! Both are built for `wasm32-unknown-unknown` and turned into components by
//! `tokenwell-component-tool componentize`, so that every import comes from
//! the world and none from a libc (see `Makefile` and `README.md`).
//!
//! The bindings are thin: they convert WIT values to the engine's and back
//! (`convert`), and the provider does the HTTP the engine asks for. Every
//! decision is the engine's.

#[cfg(all(feature = "engine", feature = "provider"))]
compile_error!("enable exactly one of the features `engine` and `provider`");

#[cfg(any(feature = "engine", feature = "provider"))]
mod convert;

#[cfg(feature = "engine")]
mod engine;

#[cfg(feature = "provider")]
mod provider;

/// The generated bindings of the selected world.
#[cfg(feature = "engine")]
#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "tokenwell:client/engine-component",
    });
}

/// The generated bindings of the selected world, with the WASI interfaces it imports.
#[cfg(feature = "provider")]
#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "tokenwell:client/provider-component",
        generate_all,
    });
}
