//! docs/configuration.md lists every setting the binaries read, and compose.yml holds together
//! with the binaries: `docker-compose config` accepts it (no engine
//! runs here, only the client's validation), every Inkwire service runs a real subcommand with
//! only environment variables that subcommand reads, each health check and Prometheus target
//! uses the port the service listens on, and nginx and the gateways point at services that exist
//! on the right ports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} runs (scripts/test-deps.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Environment variables `inkwire [sub] --help` says it reads.
fn envs_of(args: &[&str]) -> BTreeSet<String> {
    let help = run(Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args(args)
        .arg("--help"));
    help.split("[env: ")
        .skip(1)
        .filter_map(|s| s.split(['=', ']']).next())
        .map(str::to_owned)
        .collect()
}

fn port_of(address: &str) -> u16 {
    address
        .rsplit(':')
        .next()
        .and_then(|p| {
            p.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no port in {address:?}"))
}

#[test]
fn compose_matches_what_the_binaries_accept() {
    let compose = repo().join("compose.yml");
    let rendered = run(Command::new(
        std::env::var("DOCKER_COMPOSE").unwrap_or_else(|_| "docker-compose".to_owned()),
    )
    .args(["-f", &compose.display().to_string(), "config"])
    .env("INKWIRE_JWT_SECRET", "0123456789abcdef0123456789abcdef"));
    let doc = &YamlLoader::load_from_str(&rendered).expect("compose YAML")[0];
    let services = doc["services"].as_hash().expect("services");

    let global = envs_of(&[]);
    // name -> (subcommand, listen port)
    let mut inkwire: BTreeMap<String, (String, Option<u16>)> = BTreeMap::new();
    for (name, service) in services {
        let name = name.as_str().expect("name").to_owned();
        if service["image"].as_str() != Some("inkwire:latest") {
            continue;
        }
        let command: Vec<&str> = service["command"]
            .as_vec()
            .unwrap_or_else(|| panic!("{name}: command as a list"))
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        let sub = command[0].to_owned();
        let accepted = envs_of(&[&sub]);
        let env = service["environment"]
            .as_hash()
            .cloned()
            .unwrap_or_default();
        let mut listen = None;
        for (key, value) in &env {
            let key = key.as_str().expect("env key");
            if !key.starts_with("INKWIRE_") {
                continue;
            }
            assert!(
                accepted.contains(key) || global.contains(key),
                "{name}: `inkwire {sub}` does not read {key} (it reads {accepted:?})"
            );
            if key == "INKWIRE_LISTEN" {
                listen = Some(port_of(value.as_str().expect("listen")));
            }
        }
        if let Some(port) = listen {
            let check = format!("{:?}", service["healthcheck"]["test"]);
            assert!(
                check.contains(&format!("localhost:{port}/readyz")),
                "{name} listens on {port} but its health check is {check}"
            );
        }
        inkwire.insert(name, (sub, listen));
    }
    for (sub, at_least) in [
        ("command-service", 2),
        ("projection-service", 2),
        ("query-gateway", 2),
        ("migrate", 1),
    ] {
        let n = inkwire.values().filter(|(s, _)| s == sub).count();
        assert!(n >= at_least, "{n} {sub} service(s) in compose.yml");
    }

    let listening = |host: &str, port: u16, sub: &str| {
        inkwire
            .get(host)
            .is_some_and(|(s, p)| s == sub && *p == Some(port))
    };
    // Gateways forward mutations to a command service that exists.
    for (name, service) in services {
        if let Some(url) = service["environment"]["INKWIRE_COMMAND_URL"].as_str() {
            let host = url
                .trim_start_matches("http://")
                .split(':')
                .next()
                .expect("host");
            assert!(
                listening(host, port_of(url), "command-service"),
                "{name:?}: INKWIRE_COMMAND_URL {url} is no command service"
            );
        }
    }
    // nginx's upstreams are the gateways.
    let nginx = format!("{:?}", services[&Yaml::String("nginx".into())]["command"]);
    let upstreams: Vec<&str> = nginx
        .split("server ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next())
        .collect();
    assert_eq!(upstreams.len(), 2, "{nginx}");
    for upstream in upstreams {
        let host = upstream.split(':').next().expect("host");
        assert!(
            listening(host, port_of(upstream), "query-gateway"),
            "nginx upstream {upstream} is no gateway"
        );
    }
    // Every gateway keeps images in the same store (an image uploaded through one is served by
    // the other); an S3 bucket is on a service of this file that creates it, with its keys.
    let gateways: Vec<&Yaml> = services
        .iter()
        .filter(|(name, _)| {
            inkwire
                .get(name.as_str().expect("name"))
                .is_some_and(|(sub, _)| sub == "query-gateway")
        })
        .map(|(_, service)| service)
        .collect();
    let setting =
        |service: &Yaml, key: &str| service["environment"][key].as_str().map(str::to_owned);
    let stores: BTreeSet<Option<String>> = gateways
        .iter()
        .map(|g| setting(g, "INKWIRE_MEDIA_STORE"))
        .collect();
    assert_eq!(
        stores.len(),
        1,
        "gateways with different media stores: {stores:?}"
    );
    let store = stores
        .into_iter()
        .next()
        .flatten()
        .expect("the gateways have INKWIRE_MEDIA_STORE (uploads answer 503 without one)");
    if let Some(bucket) = store.strip_prefix("s3://") {
        let bucket = bucket.split('/').next().expect("bucket");
        for gateway in &gateways {
            let endpoint = setting(gateway, "AWS_ENDPOINT").expect("AWS_ENDPOINT for s3://");
            let host = endpoint
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .split(':')
                .next()
                .expect("host");
            let s3 = &services[&Yaml::String(host.to_owned())];
            assert!(
                !s3.is_badvalue(),
                "AWS_ENDPOINT {endpoint}: no service {host}"
            );
            assert!(
                format!("{:?}", s3["command"]).contains(&format!(":{}", port_of(&endpoint))),
                "{host} does not listen on {endpoint}"
            );
            for (key, server) in [
                ("AWS_ACCESS_KEY_ID", "MINIO_ROOT_USER"),
                ("AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD"),
            ] {
                assert_eq!(
                    setting(gateway, key),
                    setting(s3, server),
                    "the gateways' {key} is not {host}'s {server}"
                );
            }
            if endpoint.starts_with("http://") {
                assert_eq!(setting(gateway, "AWS_ALLOW_HTTP").as_deref(), Some("true"));
            }
        }
        let creates = services.values().any(|service| {
            let command = format!("{:?}", service["command"]);
            command.contains(" mb ") && command.contains(&format!("/{bucket}"))
        });
        assert!(creates, "no service creates the bucket {bucket}");
    }

    // Prometheus scrapes every service where it listens.
    let prometheus =
        std::fs::read_to_string(repo().join("deploy/prometheus.yml")).expect("prometheus.yml");
    let prometheus = &YamlLoader::load_from_str(&prometheus).expect("YAML")[0];
    let mut scraped = BTreeSet::new();
    for job in prometheus["scrape_configs"]
        .as_vec()
        .expect("scrape_configs")
    {
        for target in job["static_configs"][0]["targets"]
            .as_vec()
            .expect("targets")
        {
            let target = target.as_str().expect("target");
            let host = target.split(':').next().expect("host");
            let (sub, port) = inkwire
                .get(host)
                .unwrap_or_else(|| panic!("Prometheus scrapes {target}, not in compose.yml"));
            assert_eq!(*port, Some(port_of(target)), "{target} ({sub})");
            scraped.insert(host.to_owned());
        }
    }
    for (name, (sub, port)) in &inkwire {
        if port.is_some() {
            assert!(
                scraped.contains(name),
                "Prometheus does not scrape {name} ({sub})"
            );
        }
    }
}

#[test]
fn the_configuration_document_lists_every_environment_variable() {
    let doc = std::fs::read_to_string(repo().join("docs/configuration.md")).expect("docs");
    let commands: [&[&str]; 12] = [
        &[],
        &["dev"],
        &["command-service"],
        &["projection-service"],
        &["query-gateway"],
        &["lag"],
        &["replay"],
        &["events", "tail"],
        &["user", "add"],
        &["migrate"],
        &["stress"],
        &["bench"],
    ];
    let mut missing = Vec::new();
    for command in commands {
        for env in envs_of(command) {
            if !doc.contains(&format!("`{env}`")) {
                missing.push(format!("inkwire {}: {env}", command.join(" ")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md: {missing:?}"
    );
}
