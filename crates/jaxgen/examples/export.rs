//! `cargo run --example export -p jaxgen -- MODEL OUT.py`: export a zoo model with its recipe
//! (the same as `netspec export-jax MODEL -o OUT.py`, without building the CLI).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: export MODEL OUT.py");
        std::process::exit(2);
    }
    let Some(net) = spec::zoo::get(&args[1]) else {
        eprintln!("unknown zoo model {}", args[1]);
        std::process::exit(2);
    };
    let recipe = spec::zoo::recipe(&args[1]).unwrap_or_default();
    match jaxgen::export(&net, &recipe) {
        Ok(s) => std::fs::write(&args[2], s).expect("write"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
