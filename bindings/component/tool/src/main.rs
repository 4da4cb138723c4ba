//! `tokenwell-component-tool`: the few component-model steps the build needs,
//! from the same crates as `wasm-tools` and `wac`, in one small binary that
//! compiles in well under a minute (installing `wasm-tools` and `wac-cli` takes
//! several).
//!
//! ```text
//! tokenwell-component-tool componentize <core.wasm> <out.wasm>
//!     A core module with wit-bindgen's component-type section -> a component
//!     (what `wasm-tools component new` does). No WASI adapter: the module must
//!     import only what its world declares.
//! tokenwell-component-tool plug <socket.wasm> <plug.wasm>... -o <out.wasm>
//!     Plugs the plugs' exports into the socket's matching imports (`wac plug`).
//! tokenwell-component-tool imports <component.wasm>
//!     The component's import names, one per line (none: no output).
//! tokenwell-component-tool exports <component.wasm>
//!     The component's export names, one per line.
//! tokenwell-component-tool world-imports <wit-dir> <package/world>
//!     Every interface the world imports, transitively (what a component of
//!     that world may import), one per line.
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use wasmparser::{Parser, Payload};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tokenwell-component-tool: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match strs.as_slice() {
        ["componentize", input, output] => componentize(Path::new(input), Path::new(output)),
        ["plug", rest @ ..] => {
            let (files, output) = match rest {
                [files @ .., "-o", output] if files.len() >= 2 => (files, PathBuf::from(output)),
                _ => bail!("usage: plug <socket.wasm> <plug.wasm>... -o <out.wasm>"),
            };
            plug(Path::new(files[0]), &files[1..].iter().map(PathBuf::from).collect::<Vec<_>>(), &output)
        }
        ["imports", input] => print_names(Path::new(input), Direction::Imports),
        ["exports", input] => print_names(Path::new(input), Direction::Exports),
        ["world-imports", dir, world] => world_imports(Path::new(dir), world),
        _ => bail!(
            "usage: componentize <core.wasm> <out.wasm> | plug <socket.wasm> <plug.wasm>... -o <out.wasm> \
             | imports <component.wasm> | exports <component.wasm> | world-imports <wit-dir> <package/world>"
        ),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn componentize(input: &Path, output: &Path) -> Result<()> {
    let module = read(input)?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .context("reading the core module and its component-type section")?
        .validate(true)
        .encode()
        .context("encoding the component")?;
    write(output, &component)
}

fn plug(socket: &Path, plugs: &[PathBuf], output: &Path) -> Result<()> {
    use wac_graph::{types::Package, CompositionGraph, EncodeOptions};

    let mut graph = CompositionGraph::new();
    let package = Package::from_bytes("socket", None, read(socket)?, graph.types_mut())
        .with_context(|| format!("loading {}", socket.display()))?;
    let socket_id = graph.register_package(package)?;
    let mut plug_ids = Vec::new();
    for (i, path) in plugs.iter().enumerate() {
        let package = Package::from_bytes(&format!("plug{i}"), None, read(path)?, graph.types_mut())
            .with_context(|| format!("loading {}", path.display()))?;
        plug_ids.push(graph.register_package(package)?);
    }
    wac_graph::plug(&mut graph, plug_ids, socket_id).context("plugging")?;
    let bytes = graph.encode(EncodeOptions::default()).context("encoding the composition")?;
    write(output, &bytes)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Imports,
    Exports,
}

/// The names a component imports or exports at its top level.
fn component_names(bytes: &[u8], direction: Direction) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::Version { encoding: wasmparser::Encoding::Module, .. } if depth == 0 => {
                bail!("this is a core module, not a component")
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 && direction == Direction::Imports => {
                for import in reader {
                    names.push(import?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 && direction == Direction::Exports => {
                for export in reader {
                    names.push(export?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

fn print_names(input: &Path, direction: Direction) -> Result<()> {
    for name in component_names(&read(input)?, direction)? {
        println!("{name}");
    }
    Ok(())
}

fn world_imports(dir: &Path, world: &str) -> Result<()> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(dir).with_context(|| format!("parsing {}", dir.display()))?;
    let world = resolve.select_world(&[package], Some(world))?;
    let mut names: Vec<String> = resolve.worlds[world].imports.keys().map(|key| resolve.name_world_key(key)).collect();
    names.sort();
    for name in names {
        println!("{name}");
    }
    Ok(())
}
