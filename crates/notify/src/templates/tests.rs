use super::*;

fn layouts() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for locale in LOCALES {
        files.push((
            format!("{locale}/_layout.txt.j2"),
            "{{ content }}{% for l in links %}\n{{ l.decision }} {{ l.url }}{% endfor %}"
                .to_owned(),
        ));
        files.push((
            format!("{locale}/_layout.html.j2"),
            "<p>{{ content }}</p>".to_owned(),
        ));
        files.push((
            format!("{locale}/_layout.sms.j2"),
            "{{ content }}".to_owned(),
        ));
    }
    files
}

fn with(extra: &[(&str, &str)]) -> Result<Templates, TemplateError> {
    let mut files = layouts();
    files.extend(
        extra
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned())),
    );
    Templates::from_sources(files)
}

const EN: &str = "{% block subject %}Task {{ task.step }}{% endblock %}{% block body %}Due {{ task.due_at }} <b>{% endblock %}{% block sms %}Due {{ task.due_at }}{% endblock %}";
const ZH: &str = "{% block subject %}待办 {{ task.step }}{% endblock %}{% block body %}截止 {{ task.due_at }}{% endblock %}{% block sms %}截止{% endblock %}";

#[test]
fn renders_in_the_recipients_language_with_layout_and_links() {
    let t = with(&[("en/t.j2", EN), ("zh-CN/t.j2", ZH)]).expect("templates");
    let ctx = Context::sample();
    let en = t.render("t", "en", &ctx).expect("en");
    assert_eq!(en.subject, "Task review");
    assert!(en.text.starts_with("Due 2026-12-04 18:00"), "{}", en.text);
    assert!(
        en.text.contains("approve https://partnerflow.example/l/"),
        "{}",
        en.text
    );
    // HTML escapes what the text part carries verbatim.
    assert!(en.html.contains("&lt;b&gt;"), "{}", en.html);
    let zh = t.render("t", "zh-CN", &ctx).expect("zh");
    assert_eq!(zh.subject, "待办 review");
    assert_eq!(zh.locale, "zh-CN");
    // A locale of the same language, and an unknown one (the default).
    assert_eq!(t.render("t", "en-GB", &ctx).expect("en-GB").locale, "en");
    assert_eq!(t.render("t", "fr", &ctx).expect("fr").locale, "zh-CN");
}

#[test]
fn a_missing_language_or_template_is_a_problem_at_check() {
    let t = with(&[("en/t.j2", EN)]).expect("templates");
    let problems = t
        .check(["t", "other"])
        .expect_err("zh-CN/t and other are missing");
    assert!(
        problems.iter().any(|p| p.contains("zh-CN/t.j2 is missing")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("en/other.j2 is missing")),
        "{problems:?}"
    );
    assert!(matches!(
        t.render("other", "en", &Context::sample()),
        Err(TemplateError::Missing { .. })
    ));
}

#[test]
fn an_undefined_variable_is_a_problem_at_check_not_a_blank_message() {
    let typo = "{% block subject %}{{ task.dua_at }}{% endblock %}{% block body %}x{% endblock %}{% block sms %}x{% endblock %}";
    let t = with(&[("en/t.j2", typo), ("zh-CN/t.j2", ZH)]).expect("templates");
    let problems = t.check(["t"]).expect_err("typo");
    assert!(
        problems.iter().any(|p| p.contains("task.dua_at")),
        "{problems:?}"
    );
    assert!(t.render("t", "en", &Context::sample()).is_err());
}

#[test]
fn a_missing_or_empty_block_is_a_problem() {
    let no_sms = "{% block subject %}s{% endblock %}{% block body %}b{% endblock %}";
    let empty = "{% block subject %} {% endblock %}{% block body %}b{% endblock %}{% block sms %}x{% endblock %}";
    let t = with(&[("en/t.j2", no_sms), ("zh-CN/t.j2", empty)]).expect("templates");
    let problems = t.check(["t"]).expect_err("blocks");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("renders empty")),
        "{problems:?}"
    );
}

#[test]
fn the_shipped_templates_pass_their_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/templates");
    let t = Templates::load(&dir).expect("shipped templates load");
    t.check(["task.assigned"]).expect("shipped templates check");
}
