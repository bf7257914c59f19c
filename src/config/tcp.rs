//! `tcp` bindings: servers are the start points (one listener per port), clients end kafka
//! chains.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use super::loader::{Kind, Loader};
use super::plan::{HttpService, Listener, TlsPlan};
use super::yaml::{Cx, Key, Node};

/// A `tcp` client binding at the end of a kafka chain.
#[derive(Clone, Debug)]
pub(super) struct TcpClient {
    /// `options.host:port`: older Zilla configs name the Kafka bootstrap server here instead of
    /// in the kafka client's `options.servers`.
    pub server: Option<String>,
}

/// What a tcp server route leads to: the tls server on the way, if any, and the http service.
type Service = (Option<Arc<TlsPlan>>, Arc<HttpService>);

/// A tcp server route, resolved.
struct PortRoute {
    /// The ports it matches; `None` for all.
    ports: Option<Vec<u16>>,
    /// Where it leads; `None` when that failed (reported).
    service: Option<Service>,
}

impl<'y, 'e> Loader<'y, 'e> {
    /// The listeners of a tcp server binding: one per bound port, each with the http service
    /// its route (or binding exit) leads to.
    pub fn tcp_server(&mut self, idx: usize) -> Vec<Listener> {
        let (host, ports) = self.tcp_server_address(idx);
        let routes = self.routes(
            idx,
            &[
                ("guarded", Key::NotSupportedYet),
                ("with", Key::NotSupported),
            ],
            true,
        );
        let resolved: Vec<PortRoute> = routes
            .iter()
            .map(|route| PortRoute {
                ports: self.route_ports(&route.when, ports.as_deref()),
                service: self.tcp_route_service(idx, route.exit.as_ref()),
            })
            .collect();
        let (Some(host), Some(ports)) = (host, ports) else {
            return Vec::new();
        };
        let binding_path = self.bindings[idx].path.clone();
        let mut listeners = Vec::new();
        for port in ports {
            let route = resolved
                .iter()
                .find(|r| r.ports.as_ref().is_none_or(|listed| listed.contains(&port)));
            match route {
                Some(PortRoute {
                    service: Some((tls, http)),
                    ..
                }) => listeners.push(Listener {
                    binding: self.bindings[idx].name.clone(),
                    addr: SocketAddr::new(host, port),
                    http: http.clone(),
                    tls: tls.clone(),
                }),
                Some(_) => {} // the exit's problem is reported already
                None if !resolved.is_empty() => self.cx.error(
                    &format!("{binding_path}.routes"),
                    format!("no route for port {port}"),
                ),
                None => {} // `exit: required` is reported already
            }
        }
        listeners
    }

    /// `options.host` (default every IPv4 address) and `options.port` (required, no port
    /// twice).
    fn tcp_server_address(&mut self, idx: usize) -> (Option<IpAddr>, Option<Vec<u16>>) {
        let binding_path = self.bindings[idx].path.clone();
        let options = self.options(idx, &[("host", Key::Known), ("port", Key::Known)]);
        let host = match options.as_ref().and_then(|o| o.get("host")) {
            Some(node) => read_host(&mut self.cx, &node),
            None => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        };
        let ports = match &options {
            Some(options) => options
                .require(&mut self.cx, "port")
                .and_then(|node| read_ports(&mut self.cx, &node)),
            None => {
                self.cx
                    .error(&format!("{binding_path}.options.port"), "required");
                None
            }
        };
        if let Some(ports) = &ports {
            for (i, port) in ports.iter().enumerate() {
                if ports[..i].contains(port) {
                    self.cx.error(
                        &format!("{binding_path}.options.port"),
                        format!("port {port} listed twice"),
                    );
                }
            }
        }
        (host, ports)
    }

    /// The ports a route's `when` conditions match; `None` for every port (no condition, or
    /// one without `port`). A port that `bound` does not list is warned about.
    fn route_ports(&mut self, when: &[Node<'y>], bound: Option<&[u16]>) -> Option<Vec<u16>> {
        let mut matched: Option<Vec<u16>> = Some(Vec::new());
        for condition in when {
            let Some(map) = condition.map(&mut self.cx) else {
                continue;
            };
            map.check(
                &mut self.cx,
                &[
                    ("port", Key::Known),
                    ("cidr", Key::NotSupported),
                    ("authority", Key::NotSupported),
                ],
                "unknown key",
            );
            let Some(node) = map.get("port") else {
                matched = None;
                continue;
            };
            let listed = read_ports(&mut self.cx, &node).unwrap_or_default();
            for port in &listed {
                if bound.is_some_and(|bound| !bound.contains(port)) {
                    self.cx.warn(
                        &node.path,
                        format!("port {port} is not bound by options.port; never matches"),
                    );
                }
            }
            if let Some(all) = &mut matched {
                all.extend(listed);
            }
        }
        if when.is_empty() {
            return None;
        }
        matched
    }

    /// Where a route leads: an http server, directly or through a tls server.
    fn tcp_route_service(&mut self, idx: usize, exit: Option<&Node<'y>>) -> Option<Service> {
        let target = self.exit(idx, exit?, &[Kind::HttpServer, Kind::Tls])?;
        match self.bindings[target].kind {
            Some(Kind::Tls) => self.tls_server(target).map(|(tls, http)| (Some(tls), http)),
            _ => self.http_server(target).map(|http| (None, http)),
        }
    }

    /// A tcp client binding (end of a kafka chain).
    pub fn tcp_client(&mut self, idx: usize) -> Option<TcpClient> {
        self.memoized(idx, |memo| &mut memo.tcp_clients, Self::build_tcp_client)
    }

    fn build_tcp_client(&mut self, idx: usize) -> Option<TcpClient> {
        let options = self.options(idx, &[("host", Key::Known), ("port", Key::Known)]);
        let mut server = None;
        if let Some(options) = options {
            if let Some(host) = options.require(&mut self.cx, "host") {
                let host = host.string(&mut self.cx);
                let port = options
                    .require(&mut self.cx, "port")
                    .and_then(|node| node.int_in(&mut self.cx, 1..=65535));
                if let (Some(host), Some(port)) = (host, port) {
                    server = Some(if host.contains(':') && !host.starts_with('[') {
                        format!("[{host}]:{port}")
                    } else {
                        format!("{host}:{port}")
                    });
                }
            }
        }
        let routes = self.routes(
            idx,
            &[
                ("guarded", Key::NotSupportedYet),
                ("with", Key::NotSupported),
            ],
            false,
        );
        for route in routes {
            if let Some(exit) = &route.exit {
                self.cx.error(&exit.path, "not supported");
            }
            for condition in &route.when {
                let Some(map) = condition.map(&mut self.cx) else {
                    continue;
                };
                map.check(
                    &mut self.cx,
                    &[
                        ("cidr", Key::Known),
                        ("authority", Key::NotSupported),
                        ("port", Key::NotSupported),
                    ],
                    "unknown key",
                );
                if let Some(cidr) = map.get("cidr") {
                    if let Some(text) = cidr.string(&mut self.cx) {
                        if text != "0.0.0.0/0" && text != "::/0" {
                            self.cx.error(
                                &cidr.path,
                                format!(
                                    "cidr {text:?} not supported (only 0.0.0.0/0 and ::/0, which \
                                     allow every broker)"
                                ),
                            );
                        }
                    }
                }
            }
        }
        Some(TcpClient { server })
    }
}

fn read_host(cx: &mut Cx, node: &Node) -> Option<IpAddr> {
    let host = node.string(cx)?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host);
    if let Ok(ip) = bare.parse() {
        return Some(ip);
    }
    match (bare, 0).to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(addr) => Some(addr.ip()),
            None => {
                cx.error(&node.path, format!("cannot resolve host {host:?}"));
                None
            }
        },
        Err(e) => {
            cx.error(&node.path, format!("cannot resolve host {host:?}: {e}"));
            None
        }
    }
}

/// `port`: an integer, a `"from-to"` range string, or a list of either.
pub(super) fn read_ports(cx: &mut Cx, node: &Node) -> Option<Vec<u16>> {
    match node.yaml {
        yaml_rust2::Yaml::Array(_) => {
            let mut ports = Vec::new();
            let mut ok = true;
            for item in node.list(cx)? {
                match read_port_item(cx, &item) {
                    Some(more) => ports.extend(more),
                    None => ok = false,
                }
            }
            if ports.is_empty() && ok {
                cx.error(&node.path, "expected at least one port");
                return None;
            }
            ok.then_some(ports)
        }
        _ => read_port_item(cx, node),
    }
}

fn read_port_item(cx: &mut Cx, node: &Node) -> Option<Vec<u16>> {
    let parse = |text: &str| text.trim().parse::<u16>().ok();
    match node.yaml {
        yaml_rust2::Yaml::Integer(_) => Some(vec![node.int_in(cx, 0..=65535)? as u16]),
        yaml_rust2::Yaml::String(_) => {
            let text = node.string(cx)?;
            let range = match text.split_once('-') {
                Some((from, to)) => parse(from).zip(parse(to)),
                None => parse(&text).map(|port| (port, port)),
            };
            match range {
                Some((from, to)) if from <= to => Some((from..=to).collect()),
                _ => {
                    cx.error(
                        &node.path,
                        format!("expected a port (0-65535) or a range \"from-to\", found {text:?}"),
                    );
                    None
                }
            }
        }
        _ => {
            cx.error(
                &node.path,
                "expected a port (0-65535), a range \"from-to\" or a list of them",
            );
            None
        }
    }
}
