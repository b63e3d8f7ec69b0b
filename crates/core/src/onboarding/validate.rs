//! `submit_application`'s gate: every failing field of a submitted application at once.

use super::*;

/// Checks a submitted application against the format rules and the hard per-type thresholds.
///
/// Reads the JSON field by field instead of deserialising in one go, because one serde error
/// stops at the first problem while the partner must see every failing field in one answer.
/// On success the application is returned normalised (trimmed strings, upper-case USCC,
/// phones in E.164).
///
/// # Errors
/// Every failing field, in reading order, followed by the failed thresholds.
pub fn validate(
    app_json: &Value,
    rules: &OnboardingRules,
    today: NaiveDate,
) -> Result<Application, Vec<FieldError>> {
    let Some(root) = app_json.as_object() else {
        let msg = "the application must be a JSON object".to_owned();
        return Err(vec![FieldError::new("$", "type", msg)]);
    };
    let mut c = Checker::default();
    let draft = Draft::read(&mut c, root, rules, today);
    if let Some(partner_type) = draft.partner_type {
        check_thresholds(&mut c, &draft, partner_type, rules, today);
    }
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    draft.finish().ok_or_else(|| {
        let msg = "the application could not be assembled".to_owned();
        vec![FieldError::new("$", "internal", msg)]
    })
}

/// Collects every problem found while reading the submitted JSON.
#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

/// `parent.key`, or `key` at the root.
fn path_of(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl Checker {
    fn fail(&mut self, field: &str, rule: &str, message: String) {
        self.errors.push(FieldError::new(field, rule, message));
    }

    /// A required, non-blank string, trimmed.
    fn text(&mut self, obj: &Map<String, Value>, parent: &str, key: &str) -> Option<String> {
        let field = path_of(parent, key);
        match obj.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            None | Some(Value::Null | Value::String(_)) => {
                self.fail(&field, "required", format!("{field} is required"));
                None
            }
            Some(_) => {
                self.fail(&field, "type", format!("{field} must be a string"));
                None
            }
        }
    }

    /// An optional string; blank counts as absent.
    fn opt_text(&mut self, obj: &Map<String, Value>, parent: &str, key: &str) -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
            Some(_) => {
                let field = path_of(parent, key);
                self.fail(&field, "type", format!("{field} must be a string"));
                None
            }
        }
    }

    /// A count defaulting to 0; `None` only when present and not a whole number.
    fn count(&mut self, obj: &Map<String, Value>, parent: &str, key: &str) -> Option<u32> {
        match obj.get(key) {
            None | Some(Value::Null) => Some(0),
            Some(v) => {
                let n = v.as_u64().and_then(|n| u32::try_from(n).ok());
                if n.is_none() {
                    let field = path_of(parent, key);
                    let msg = format!("{field} must be a non-negative whole number, got {v}");
                    self.fail(&field, "type", msg);
                }
                n
            }
        }
    }

    /// A flag defaulting to false.
    fn flag(&mut self, obj: &Map<String, Value>, parent: &str, key: &str) -> Option<bool> {
        match obj.get(key) {
            None | Some(Value::Null) => Some(false),
            Some(Value::Bool(b)) => Some(*b),
            Some(v) => {
                let field = path_of(parent, key);
                self.fail(
                    &field,
                    "type",
                    format!("{field} must be true or false, got {v}"),
                );
                None
            }
        }
    }

    /// A money amount. JSON numbers are refused: they reach `serde_json` as floats, and money
    /// must never pass through a float (PRODUCT §2).
    fn amount(
        &mut self,
        obj: &Map<String, Value>,
        parent: &str,
        key: &str,
        default: Option<Decimal>,
    ) -> Option<Decimal> {
        let field = path_of(parent, key);
        match (obj.get(key), default) {
            (None | Some(Value::Null), Some(d)) => Some(d),
            (None | Some(Value::Null), None) => {
                self.fail(&field, "required", format!("{field} is required"));
                None
            }
            (Some(Value::String(s)), _) => self.parse_amount(&field, s.trim()),
            (Some(v), _) => {
                let msg =
                    format!("{field} must be a decimal string such as \"1000000.00\", got {v}");
                self.fail(&field, "type", msg);
                None
            }
        }
    }

    fn parse_amount(&mut self, field: &str, s: &str) -> Option<Decimal> {
        let Ok(d) = Decimal::from_str(s) else {
            let msg =
                format!("{field} must be a decimal amount such as \"1000000.00\", got \"{s}\"");
            self.fail(field, "format", msg);
            return None;
        };
        if d.is_sign_negative() && !d.is_zero() {
            self.fail(
                field,
                "negative_amount",
                format!("{field} must not be negative, got {s}"),
            );
            return None;
        }
        // Trailing zeros ("1.500") are harmless; only real fractions of a fen are refused.
        if d.normalize().scale() > 2 {
            let msg = format!("{field} must have at most 2 decimal places, got {s}");
            self.fail(field, "too_many_decimals", msg);
            return None;
        }
        Some(d)
    }

    /// A required `YYYY-MM-DD` date that is not after `today`.
    fn past_date(
        &mut self,
        obj: &Map<String, Value>,
        parent: &str,
        key: &str,
        today: NaiveDate,
    ) -> Option<NaiveDate> {
        let s = self.text(obj, parent, key)?;
        let field = path_of(parent, key);
        let parsed = (s.len() == 10).then(|| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok());
        let Some(date) = parsed.flatten() else {
            self.fail(
                &field,
                "format",
                format!("{field} must be a date YYYY-MM-DD, got \"{s}\""),
            );
            return None;
        };
        if date > today {
            let msg = format!("{field} {date} is in the future (today is {today})");
            self.fail(&field, "future_date", msg);
            return None;
        }
        Some(date)
    }

    /// A required JSON object.
    fn object<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<&'a Map<String, Value>> {
        let field = path_of(parent, key);
        match obj.get(key) {
            Some(Value::Object(m)) => Some(m),
            None | Some(Value::Null) => {
                self.fail(&field, "required", format!("{field} is required"));
                None
            }
            Some(_) => {
                self.fail(&field, "type", format!("{field} must be an object"));
                None
            }
        }
    }

    /// A JSON array; a missing optional array is empty.
    fn array<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        required: bool,
    ) -> Option<&'a [Value]> {
        match obj.get(key) {
            Some(Value::Array(items)) => Some(items),
            None | Some(Value::Null) if !required => Some(&[]),
            None | Some(Value::Null) => {
                self.fail(key, "required", format!("{key} is required"));
                None
            }
            Some(_) => {
                self.fail(key, "type", format!("{key} must be a list"));
                None
            }
        }
    }

    /// Normalises and checks a unified social credit code (GB 32100-2015).
    fn uscc(&mut self, field: &str, raw: &str) -> Option<String> {
        let code = raw.to_ascii_uppercase();
        match uscc_problem(&code) {
            None => Some(code),
            Some((rule, why)) => {
                self.fail(field, rule, format!("{field} \"{raw}\" {why}"));
                None
            }
        }
    }
}

/// The application with every leaf optional, so that the thresholds can run on whatever was
/// readable even when other fields failed.
struct Draft {
    partner_id: Option<String>,
    partner_type: Option<PartnerType>,
    company: Option<CompanyDraft>,
    contacts: Option<Vec<Contact>>,
    headcount: Option<HeadcountDraft>,
    certified_staff: Option<u32>,
    exam_passers: Option<u32>,
    software_copyrights: Option<u32>,
    deposit_paid: Option<Decimal>,
    documents: Option<Vec<Document>>,
    sensitive_relationship_declared: Option<bool>,
    submitted_by: Option<String>,
}

struct CompanyDraft {
    name: Option<String>,
    uscc: Option<String>,
    registered_capital: Option<Decimal>,
    /// `None` when it is not the programme currency: amounts are then not comparable.
    currency: Option<String>,
    established_on: Option<NaiveDate>,
    address: Option<String>,
}

#[derive(Clone, Copy)]
struct HeadcountDraft {
    total: Option<u32>,
    technical: Option<u32>,
    sales: Option<u32>,
    rnd: Option<u32>,
    delivery: Option<u32>,
}

impl Draft {
    fn read(
        c: &mut Checker,
        root: &Map<String, Value>,
        rules: &OnboardingRules,
        today: NaiveDate,
    ) -> Self {
        Self {
            partner_id: c.text(root, "", "partner_id"),
            partner_type: read_partner_type(c, root),
            company: c
                .object(root, "", "company")
                .map(|obj| read_company(c, obj, rules, today)),
            contacts: read_contacts(c, root),
            headcount: read_headcount(c, root),
            certified_staff: c.count(root, "", "certified_staff"),
            exam_passers: c.count(root, "", "exam_passers"),
            software_copyrights: c.count(root, "", "software_copyrights"),
            deposit_paid: c.amount(root, "", "deposit_paid", Some(Decimal::ZERO)),
            documents: read_documents(c, root),
            sensitive_relationship_declared: c.flag(root, "", "sensitive_relationship_declared"),
            submitted_by: c.text(root, "", "submitted_by"),
        }
    }

    /// The typed application; `None` if any required part is missing (then errors exist).
    fn finish(self) -> Option<Application> {
        let company = self.company?;
        let headcount = self.headcount?;
        Some(Application {
            partner_id: self.partner_id?,
            company: Company {
                name: company.name?,
                uscc: company.uscc?,
                registered_capital: company.registered_capital?,
                currency: company.currency?,
                established_on: company.established_on?,
                address: company.address,
            },
            partner_type: self.partner_type?,
            contacts: self.contacts?,
            headcount: Headcount {
                total: headcount.total?,
                technical: headcount.technical?,
                sales: headcount.sales?,
                rnd: headcount.rnd?,
                delivery: headcount.delivery?,
            },
            certified_staff: self.certified_staff?,
            exam_passers: self.exam_passers?,
            software_copyrights: self.software_copyrights?,
            deposit_paid: self.deposit_paid?,
            documents: self.documents?,
            sensitive_relationship_declared: self.sensitive_relationship_declared?,
            submitted_by: self.submitted_by?,
        })
    }
}

fn read_partner_type(c: &mut Checker, root: &Map<String, Value>) -> Option<PartnerType> {
    let raw = c.text(root, "", "partner_type")?;
    let parsed = raw.parse().ok();
    if parsed.is_none() {
        let msg =
            format!("partner_type must be one of agent, integration, development; got \"{raw}\"");
        c.fail("partner_type", "one_of", msg);
    }
    parsed
}

fn read_company(
    c: &mut Checker,
    obj: &Map<String, Value>,
    rules: &OnboardingRules,
    today: NaiveDate,
) -> CompanyDraft {
    const P: &str = "company";
    let name = c.text(obj, P, "name");
    let uscc = c
        .text(obj, P, "uscc")
        .and_then(|raw| c.uscc("company.uscc", &raw));
    let registered_capital = c.amount(obj, P, "registered_capital", None);
    let currency = c
        .opt_text(obj, P, "currency")
        .unwrap_or_else(default_currency);
    let currency = if currency == rules.currency {
        Some(currency)
    } else {
        let msg = format!(
            "company.currency must be {}, the currency of this programme's thresholds; got \"{currency}\"",
            rules.currency
        );
        c.fail("company.currency", "currency", msg);
        None
    };
    CompanyDraft {
        name,
        uscc,
        registered_capital,
        currency,
        established_on: c.past_date(obj, P, "established_on", today),
        address: c.opt_text(obj, P, "address"),
    }
}

fn read_contacts(c: &mut Checker, root: &Map<String, Value>) -> Option<Vec<Contact>> {
    let items = c.array(root, "contacts", true)?;
    if items.is_empty() {
        let msg = "contacts needs at least one contact (the first receives notifications)";
        c.fail("contacts", "min_items", msg.to_owned());
        return None;
    }
    let mut contacts = Vec::with_capacity(items.len());
    let mut complete = true;
    for (i, item) in items.iter().enumerate() {
        match read_contact(c, item, &format!("contacts[{i}]")) {
            Some(contact) => contacts.push(contact),
            None => complete = false,
        }
    }
    complete.then_some(contacts)
}

fn read_contact(c: &mut Checker, item: &Value, path: &str) -> Option<Contact> {
    let Some(obj) = item.as_object() else {
        c.fail(
            path,
            "type",
            format!("{path} must be an object with name, email and phone"),
        );
        return None;
    };
    let name = c.text(obj, path, "name");
    let email = c.text(obj, path, "email").filter(|email| {
        let ok = is_email(email);
        if !ok {
            let msg = format!("{path}.email \"{email}\" is not an email address");
            c.fail(&path_of(path, "email"), "format", msg);
        }
        ok
    });
    let phone = c.text(obj, path, "phone").and_then(|raw| {
        match crate::phone::normalize(&raw, crate::phone::DEFAULT_COUNTRY_CODE) {
            Ok(phone) => Some(phone),
            Err(rule) => {
                let msg = format!("{path}.phone \"{raw}\" is not a phone number in E.164: {rule}");
                c.fail(&path_of(path, "phone"), "format", msg);
                None
            }
        }
    });
    let locale = obj
        .get("locale")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned);
    Some(Contact {
        name: name?,
        email: email?,
        phone: phone?,
        locale,
    })
}

fn read_headcount(c: &mut Checker, root: &Map<String, Value>) -> Option<HeadcountDraft> {
    const P: &str = "headcount";
    let empty = Map::new();
    let obj = match root.get(P) {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => {
            c.fail(
                P,
                "type",
                "headcount must be an object of counts".to_owned(),
            );
            return None;
        }
    };
    let h = HeadcountDraft {
        total: c.count(obj, P, "total"),
        technical: c.count(obj, P, "technical"),
        sales: c.count(obj, P, "sales"),
        rnd: c.count(obj, P, "rnd"),
        delivery: c.count(obj, P, "delivery"),
    };
    // Each team is part of the company, so none can be larger than the whole.
    let teams = [
        ("technical", h.technical),
        ("sales", h.sales),
        ("rnd", h.rnd),
        ("delivery", h.delivery),
    ];
    if let Some(total) = h.total {
        for (key, team) in teams {
            if let Some(n) = team
                && n > total
            {
                let msg = format!("headcount.{key} {n} exceeds headcount.total {total}");
                c.fail(&path_of(P, key), "exceeds_total", msg);
            }
        }
    }
    Some(h)
}

fn read_documents(c: &mut Checker, root: &Map<String, Value>) -> Option<Vec<Document>> {
    let items = c.array(root, "documents", false)?;
    let mut documents = Vec::with_capacity(items.len());
    let mut complete = true;
    for (i, item) in items.iter().enumerate() {
        let path = format!("documents[{i}]");
        let Some(obj) = item.as_object() else {
            c.fail(
                &path,
                "type",
                format!("{path} must be an object with kind and file_name"),
            );
            complete = false;
            continue;
        };
        match (c.text(obj, &path, "kind"), c.text(obj, &path, "file_name")) {
            (Some(kind), Some(file_name)) => documents.push(Document { kind, file_name }),
            _ => complete = false,
        }
    }
    complete.then_some(documents)
}

/// The count thresholds as (field, rule, what is counted), in the order `check_thresholds`
/// lists the actual and minimum values.
const COUNT_RULES: [(&str, &str, &str); 8] = [
    ("headcount.total", "min_staff", "staff"),
    ("headcount.technical", "min_technical", "technical staff"),
    ("headcount.sales", "min_sales", "full-time sales staff"),
    ("headcount.rnd", "min_rnd", "R&D staff"),
    ("headcount.delivery", "min_delivery", "delivery staff"),
    (
        "certified_staff",
        "min_certified_staff",
        "sales-manager-certified staff",
    ),
    ("exam_passers", "min_exam_passers", "sales-exam passers"),
    (
        "software_copyrights",
        "min_software_copyrights",
        "software copyrights",
    ),
];

/// The hard per-type thresholds, on whichever values could be read.
fn check_thresholds(
    c: &mut Checker,
    d: &Draft,
    partner_type: PartnerType,
    rules: &OnboardingRules,
    today: NaiveDate,
) {
    let t = rules.for_type(partner_type);
    if let Some(company) = &d.company {
        check_capital(c, company, t, partner_type);
        check_age(c, company, t, partner_type, today);
    }
    let h = d.headcount;
    let actual = [
        h.and_then(|h| h.total),
        h.and_then(|h| h.technical),
        h.and_then(|h| h.sales),
        h.and_then(|h| h.rnd),
        h.and_then(|h| h.delivery),
        d.certified_staff,
        d.exam_passers,
        d.software_copyrights,
    ];
    let min = [
        t.min_staff,
        t.min_technical,
        t.min_sales,
        t.min_rnd,
        t.min_delivery,
        t.min_certified_staff,
        t.min_exam_passers,
        t.min_software_copyrights,
    ];
    for (((field, rule, what), actual), min) in COUNT_RULES.into_iter().zip(actual).zip(min) {
        if let Some(n) = actual
            && n < min
        {
            let msg = format!("{n} {what}; {partner_type} partners need at least {min}");
            c.fail(field, rule, msg);
        }
    }
    let currency_ok = d.company.as_ref().is_some_and(|co| co.currency.is_some());
    if rules.deposit_check == RuleStrength::Hard
        && currency_ok
        && let Some(paid) = d.deposit_paid
        && paid < t.deposit
    {
        let msg = format!(
            "deposit paid {} is less than the {} cooperation deposit for {partner_type} partners",
            money(paid, &rules.currency),
            money(t.deposit, &rules.currency)
        );
        c.fail("deposit_paid", "min_deposit", msg);
    }
}

fn check_capital(c: &mut Checker, co: &CompanyDraft, t: &TypeRules, partner_type: PartnerType) {
    if let (Some(capital), Some(currency)) = (co.registered_capital, &co.currency)
        && capital < t.min_registered_capital
    {
        let msg = format!(
            "registered capital {} is below the {} minimum for {partner_type} partners",
            money(capital, currency),
            money(t.min_registered_capital, currency)
        );
        c.fail("company.registered_capital", "min_registered_capital", msg);
    }
}

fn check_age(c: &mut Checker, co: &CompanyDraft, t: &TypeRules, pt: PartnerType, today: NaiveDate) {
    let Some(established) = co.established_on else {
        return;
    };
    let years = t.min_company_age_years;
    // Calendar months, so a company registered on 2024-03-15 is one year old on 2025-03-15.
    let old_enough_on = established.checked_add_months(Months::new(years.saturating_mul(12)));
    if old_enough_on.is_none_or(|d| d > today) {
        let msg = format!(
            "company established on {established} is under {years} year(s) old on {today}; \
             {pt} partners need at least {years} year(s)"
        );
        c.fail("company.established_on", "min_company_age", msg);
    }
}

/// `CNY 1,000,000.00`: amounts in messages are read by people, so group the thousands.
pub(super) fn money(amount: Decimal, currency: &str) -> String {
    // `{:.2}` on a Decimal truncates; round first, the PRODUCT §2 way (banker's).
    let rounded = amount
        .abs()
        .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    let fixed = format!("{rounded:.2}");
    let (int, frac) = fixed.split_once('.').unwrap_or((&fixed, "00"));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if amount.is_sign_negative() && !amount.is_zero() {
        "-"
    } else {
        ""
    };
    format!("{currency} {sign}{grouped}.{frac}")
}

/// The 31 characters of GB 32100-2015 (digits and capitals without I, O, S, V, Z); a
/// character's value is its index.
const USCC_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Why a USCC is invalid, as (rule, explanation), or `None` if it is valid.
pub(super) fn uscc_problem(code: &str) -> Option<(&'static str, String)> {
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 18 {
        return Some((
            "format",
            format!("must be 18 characters, has {}", chars.len()),
        ));
    }
    let mut values = [0usize; 18];
    for (i, ch) in chars.iter().enumerate() {
        let Some(v) = USCC_CHARSET.find(*ch) else {
            let why = format!(
                "has '{ch}' at position {}; only 0-9 and A-Y without I, O, S, V are allowed",
                i + 1
            );
            return Some(("format", why));
        };
        values[i] = v;
    }
    // Positions 3-8 are the administrative-division code, always digits.
    if !chars[2..8].iter().all(char::is_ascii_digit) {
        let why = "must have a 6-digit division code in positions 3-8".to_owned();
        return Some(("format", why));
    }
    let expected = uscc_check_char(&values);
    if chars[17] != expected {
        let why =
            format!("fails the GB 32100-2015 check: the 18th character should be '{expected}'");
        return Some(("check_character", why));
    }
    None
}

/// The check character: weights are 3^i mod 31, and the check value brings the weighted sum
/// to a multiple of 31.
fn uscc_check_char(values: &[usize; 18]) -> char {
    let mut weight = 1;
    let mut sum = 0;
    for v in &values[..17] {
        sum += v * weight;
        weight = weight * 3 % 31;
    }
    let check = (31 - sum % 31) % 31;
    USCC_CHARSET[check..].chars().next().unwrap_or('0')
}

/// Shape check only (one `@`, a dotted domain, no spaces): whether the mailbox exists is
/// learnt when the submission email bounces, not here.
pub(super) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && labels_ok
        && !s.chars().any(|ch| ch.is_whitespace() || ch.is_control())
}
