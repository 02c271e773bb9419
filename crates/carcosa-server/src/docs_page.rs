//! The `/docs` page: the OpenAPI document rendered as one self-contained HTML page.
//!
//! No script, no CDN, no web font: the page is generated once at start-up from the same
//! document `/openapi.json` serves, so it works offline and cannot disagree with it.

use std::fmt::Write;

use serde_json::Value;

/// Renders `spec` (an OpenAPI document as JSON) as an HTML page.
#[must_use]
pub fn render(spec: &Value) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = text(&spec["info"]["title"]);
    let version = text(&spec["info"]["version"]);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t} API reference</title><style>{STYLE}</style></head><body><header><h1>{t} API <small>v{v}</small></h1>\
<p>{d}</p><p><a href=\"/openapi.json\">openapi.json</a></p></header><nav aria-label=\"Operations\">",
        t = esc(&title),
        v = esc(&version),
        d = code_spans(&esc(&text(&spec["info"]["description"]))),
    );
    let groups = grouped(spec);
    for (tag, operations) in &groups {
        let _ = write!(out, "<h2 class=\"tag\">{}</h2><ul>", esc(&tag.name));
        for op in operations {
            let _ = write!(
                out,
                "<li><a href=\"#{anchor}\"><span class=\"m {m}\">{M}</span> {p}</a></li>",
                anchor = op.anchor(),
                m = op.method,
                M = op.method.to_uppercase(),
                p = esc(&op.path)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("<ul><li><a href=\"#schemas\">Schemas</a></li></ul></nav><main>");
    for (tag, operations) in &groups {
        let _ = write!(
            out,
            "<section class=\"group\"><h1>{}</h1><p>{}</p>",
            esc(&tag.name),
            code_spans(&esc(&tag.description))
        );
        for op in operations {
            render_operation(&mut out, op);
        }
        out.push_str("</section>");
    }
    out.push_str("<section id=\"schemas\"><h2>Schemas</h2>");
    if let Some(schemas) = spec["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            render_schema(&mut out, name, schema);
        }
    }
    out.push_str("</section></main></body></html>");
    out
}

struct Operation<'a> {
    path: String,
    method: &'static str,
    body: &'a Value,
}

impl Operation<'_> {
    fn anchor(&self) -> String {
        let slug: String =
            self.path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        format!("{}{slug}", self.method)
    }
}

struct Tag {
    name: String,
    description: String,
}

/// The operations under each tag, in the document's tag order; untagged ones last.
fn grouped(spec: &Value) -> Vec<(Tag, Vec<Operation<'_>>)> {
    const METHODS: [&str; 5] = ["post", "get", "patch", "put", "delete"];
    let mut tags: Vec<Tag> = spec["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| Tag { name: text(&t["name"]), description: text(&t["description"]) })
                .collect()
        })
        .unwrap_or_default();
    tags.push(Tag { name: "other".into(), description: String::new() });
    let mut groups: Vec<(Tag, Vec<Operation<'_>>)> = tags.into_iter().map(|t| (t, Vec::new())).collect();
    if let Some(paths) = spec["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                let Some(body) = item.get(method) else { continue };
                let tag = body["tags"].get(0).map(text).unwrap_or_default();
                let index = groups.iter().position(|(t, _)| t.name == tag).unwrap_or(groups.len() - 1);
                groups[index].1.push(Operation { path: path.clone(), method, body });
            }
        }
    }
    groups.retain(|(_, ops)| !ops.is_empty());
    groups
}

fn render_operation(out: &mut String, op: &Operation<'_>) {
    let body = op.body;
    let _ = write!(
        out,
        "<section class=\"op\" id=\"{anchor}\"><h2><span class=\"m {m}\">{M}</span> <code>{p}</code></h2><p class=\"summary\">{s}</p>",
        anchor = op.anchor(),
        m = op.method,
        M = op.method.to_uppercase(),
        p = esc(&op.path),
        s = esc(&text(&body["summary"])),
    );
    for para in text(&body["description"]).split("\n\n").filter(|p| !p.trim().is_empty()) {
        let _ = write!(out, "<p>{}</p>", code_spans(&esc(para)));
    }
    if let Some(security) = body["security"].as_array() {
        let scopes: Vec<String> =
            security.iter().filter_map(|s| s["api_key"].as_array()).flatten().map(text).collect();
        if !scopes.is_empty() {
            let _ = write!(out, "<p class=\"scope\">Scope: <code>{}</code></p>", esc(&scopes.join(", ")));
        }
    }
    if let Some(params) = body["parameters"].as_array().filter(|p| !p.is_empty()) {
        out.push_str("<h3>Parameters</h3><table><thead><tr><th>Name</th><th>In</th><th>Type</th><th>Description</th></tr></thead><tbody>");
        for param in params {
            let required = if param["required"].as_bool() == Some(true) { " <em>required</em>" } else { "" };
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{required}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&text(&param["name"])),
                esc(&text(&param["in"])),
                esc(&type_name(&param["schema"])),
                code_spans(&esc(&text(&param["description"]))),
            );
        }
        out.push_str("</tbody></table>");
    }
    if let Some(content) = body["requestBody"]["content"].as_object() {
        out.push_str("<h3>Request body</h3><ul>");
        for (media, media_body) in content {
            let _ = write!(out, "<li><code>{}</code>: {}</li>", esc(media), type_link(&media_body["schema"]));
        }
        out.push_str("</ul>");
    }
    if let Some(responses) = body["responses"].as_object() {
        out.push_str("<h3>Responses</h3><table><thead><tr><th>Status</th><th>Description</th><th>Body</th></tr></thead><tbody>");
        for (status, response) in responses {
            let bodies: Vec<String> = response["content"]
                .as_object()
                .map(|c| {
                    c.iter()
                        .map(|(media, m)| {
                            format!("{} <small>{}</small>", type_link(&m["schema"]), esc(media))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td class=\"status s{}\">{}</td><td>{}</td><td>{}</td></tr>",
                &status[..1],
                esc(status),
                code_spans(&esc(&text(&response["description"]))),
                bodies.join("<br>"),
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");
}

fn render_schema(out: &mut String, name: &str, schema: &Value) {
    let _ = write!(out, "<section class=\"schema\" id=\"schema-{n}\"><h3>{n}</h3>", n = esc(name));
    if let Some(description) = schema["description"].as_str() {
        let _ = write!(out, "<p>{}</p>", code_spans(&esc(description)));
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| format!("<code>{}</code>", esc(&text(v)))).collect();
        let _ = write!(out, "<p>One of: {}</p>", values.join(", "));
    }
    if let Some(variants) = schema["oneOf"].as_array() {
        let values: Vec<String> = variants
            .iter()
            .flat_map(|v| v["enum"].as_array().cloned().unwrap_or_default())
            .map(|v| format!("<code>{}</code>", esc(&text(&v))))
            .collect();
        if !values.is_empty() {
            let _ = write!(out, "<p>One of: {}</p>", values.join(", "));
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out.push_str("<table><thead><tr><th>Field</th><th>Type</th><th>Description</th></tr></thead><tbody>");
        for (field, property) in properties {
            let mark = if required.contains(&field.as_str()) { " <em>required</em>" } else { "" };
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{mark}</td><td>{}</td><td>{}</td></tr>",
                esc(field),
                type_link(property),
                code_spans(&esc(&text(&property["description"]))),
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");
}

/// A schema's type in a few words, with a link when it refers to a named schema.
fn type_link(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{n}\">{n}</a>", n = esc(name));
    }
    if schema["type"] == "array" {
        return format!("array of {}", type_link(&schema["items"]));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(variants) = schema[key].as_array() {
            return variants.iter().map(type_link).collect::<Vec<_>>().join(" or ");
        }
    }
    esc(&type_name(schema))
}

fn type_name(schema: &Value) -> String {
    match &schema["type"] {
        Value::String(t) => match schema["format"].as_str() {
            Some(format) => format!("{t} ({format})"),
            None => t.clone(),
        },
        Value::Array(types) => types.iter().map(text).collect::<Vec<_>>().join(" | "),
        _ if schema.get("$ref").is_some() => {
            text(&schema["$ref"]).rsplit('/').next().unwrap_or_default().to_owned()
        }
        _ => "any".to_owned(),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Turns `backtick` spans of already-escaped text into `<code>`.
fn code_spans(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

const STYLE: &str = "\
:root{--fg:#1d1d1f;--muted:#5f6368;--line:#d9dce1;--bg:#fff;--code:#f3f4f6;--accent:#2f5bd3}\
@media (prefers-color-scheme:dark){:root{--fg:#e8e8ea;--muted:#a0a4aa;--line:#3a3d42;--bg:#16171a;--code:#24262b;--accent:#8fb0ff}}\
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg);display:grid;grid-template-columns:minmax(14rem,18rem) 1fr}\
header{grid-column:1/-1;padding:1rem 1.5rem;border-bottom:1px solid var(--line)}h1{margin:0 0 .25rem;font-size:1.5rem}h1 small{color:var(--muted);font-weight:400;font-size:1rem}\
nav{padding:1rem;border-right:1px solid var(--line);position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto}nav ul{list-style:none;margin:0 0 .8rem;padding:0}nav li{margin:.2rem 0}\
nav h2.tag{font-size:.8rem;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:.4rem 0}section.group>h1{font-size:1.4rem;text-transform:capitalize;margin:.5rem 0 0}section.group>p{color:var(--muted)}\
a{color:var(--accent)}a:focus{outline:2px solid var(--accent);outline-offset:2px}main{padding:1rem 1.5rem;min-width:0}\
section.op{border-bottom:1px solid var(--line);padding-bottom:1rem;margin-bottom:1rem}h2{font-size:1.15rem}h3{font-size:1rem;margin-bottom:.3rem}\
code{background:var(--code);padding:.05rem .3rem;border-radius:4px;font-size:.9em}table{border-collapse:collapse;width:100%;margin:.3rem 0;display:block;overflow-x:auto}\
th,td{border:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}.m{display:inline-block;min-width:4.2em;text-align:center;border-radius:4px;padding:0 .3rem;font-size:.8em;font-weight:600;color:#fff}\
.get{background:#2f7d4f}.post{background:#2f5bd3}.patch{background:#a0661b}.put{background:#7a4fb3}.delete{background:#b3261e}\
.summary{font-weight:600}.scope{color:var(--muted)}.status{font-weight:600}.s2{color:#2f7d4f}.s4{color:#a0661b}.s5{color:#b3261e}\
@media (max-width:760px){body{display:block}nav{position:static;max-height:none;border-right:0;border-bottom:1px solid var(--line)}}";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_from_the_document_is_escaped() {
        let spec = json!({
            "info": {"title": "<T>", "version": "1", "description": "a & b"},
            "tags": [{"name": "things", "description": "All the <things>."}],
            "paths": {"/x": {"get": {"tags": ["things"], "summary": "<script>", "responses": {"200": {"description": "`ok`"}}}}},
        });
        let page = render(&spec);
        assert!(page.contains("&lt;T&gt;"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("<code>ok</code>"));
        assert!(page.contains("All the &lt;things&gt;."), "tags group the operations");
    }
}
