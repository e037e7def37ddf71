//! Markdown to safe HTML, once, in the gateway: pulldown-cmark renders,
//! ammonia keeps only an allow-list of tags and attributes. No script, no
//! event handlers, no `style`, no images, links only to `http`, `https`
//! and `mailto`, and every link opens apart with
//! `rel="noopener noreferrer nofollow"`.

use std::collections::HashSet;
use std::sync::OnceLock;

use pulldown_cmark::{Options, Parser, html};

/// The only tags rendered messages may hold.
pub const ALLOWED_TAGS: [&str; 25] = [
    "p",
    "br",
    "strong",
    "em",
    "del",
    "code",
    "pre",
    "a",
    "ul",
    "ol",
    "li",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
];

fn cleaner() -> &'static ammonia::Builder<'static> {
    static CLEANER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    CLEANER.get_or_init(|| {
        let tags: HashSet<&str> = ALLOWED_TAGS.into_iter().collect();
        let mut b = ammonia::Builder::empty();
        b.tags(tags)
            .link_rel(Some("noopener noreferrer nofollow"))
            .url_schemes(["http", "https", "mailto"].into_iter().collect())
            .add_tag_attributes("a", ["href", "target"])
            .add_tag_attributes("ol", ["start"])
            .add_tag_attributes("code", ["class"])
            .set_tag_attribute_value("a", "target", "_blank")
            .url_relative(ammonia::UrlRelative::Deny)
            .strip_comments(true);
        b
    })
}

/// Renders a message body (markdown source) to sanitized HTML.
pub fn render(body: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_TABLES);
    let parser = Parser::new_ext(body, opts).map(|ev| match ev {
        // Raw HTML in a message is shown as text, not interpreted.
        pulldown_cmark::Event::Html(t) | pulldown_cmark::Event::InlineHtml(t) => {
            pulldown_cmark::Event::Text(t)
        }
        other => other,
    });
    let mut raw = String::with_capacity(body.len() * 2);
    html::push_html(&mut raw, parser);
    cleaner().clean(&raw).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_survives() {
        assert_eq!(
            render("Ship it **today**"),
            "<p>Ship it <strong>today</strong></p>\n"
        );
        let h = render("*a* ~~b~~ `c`\n\n```rust\nfn x() {}\n```\n\n> q\n\n- one\n- two");
        for part in [
            "<em>a</em>",
            "<del>b</del>",
            "<code>c</code>",
            "<pre><code class=\"language-rust\">fn x() {}",
            "<blockquote>",
            "<li>one</li>",
        ] {
            assert!(h.contains(part), "{part} missing in {h}");
        }
        let link = render("[site](https://example.org)");
        assert!(link.contains("href=\"https://example.org\""), "{link}");
        assert!(
            link.contains("rel=\"noopener noreferrer nofollow\""),
            "{link}"
        );
        assert!(link.contains("target=\"_blank\""), "{link}");
    }

    /// Known XSS vectors: each must come out without anything a browser
    /// would run.
    pub(crate) const XSS: &[&str] = &[
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<svg onload=alert(1)>",
        "<iframe src=javascript:alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](  javascript:alert(1))",
        "[x](javascript&#58;alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](vbscript:msgbox(1))",
        "![x](javascript:alert(1))",
        "![x](https://evil.example/track.png)",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<a href=x onclick=alert(1)>x</a>",
        "<div style=\"background:url(javascript:alert(1))\">x</div>",
        "<body onload=alert(1)>",
        "<details open ontoggle=alert(1)>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<object data=javascript:alert(1)>",
        "<embed src=javascript:alert(1)>",
        "<form action=javascript:alert(1)><input type=submit>",
        "<meta http-equiv=refresh content=\"0;url=javascript:alert(1)\">",
        "<link rel=stylesheet href=javascript:alert(1)>",
        "<base href=javascript:alert(1)//>",
        "<style>@import 'javascript:alert(1)';</style>",
        "<video><source onerror=alert(1)>",
        "<marquee onstart=alert(1)>",
        "<isindex action=javascript:alert(1) type=submit>",
        "[x](https://ok.example\" onmouseover=\"alert(1))",
        "<scr<script>ipt>alert(1)</script>",
        "`<script>alert(1)</script>`",
        "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
        "[x]: javascript:alert(1)\n\n[x]",
        "<textarea><script>alert(1)</script></textarea>",
        "<!--<script>alert(1)</script>-->",
    ];

    /// The tags of rendered HTML (text `<` is always escaped to `&lt;`).
    fn tags(h: &str) -> Vec<&str> {
        h.split('<')
            .skip(1)
            .map(|t| t.split('>').next().unwrap_or(t))
            .collect()
    }

    #[test]
    fn xss_vectors_come_out_inert() {
        assert!(XSS.len() >= 30);
        for v in XSS {
            let h = render(v);
            for tag in tags(&h) {
                let t = tag.to_lowercase();
                let name = t
                    .trim_start_matches('/')
                    .split([' ', '/'])
                    .next()
                    .unwrap_or("");
                assert!(
                    ALLOWED_TAGS.contains(&name),
                    "{v:?} gave tag <{tag}> in {h:?}"
                );
                for bad in ["javascript:", "vbscript:", "data:", " on", "style=", "src="] {
                    assert!(!t.contains(bad), "{v:?} gave <{tag}> ({bad:?}) in {h:?}");
                }
            }
        }
    }
}
