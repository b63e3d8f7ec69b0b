//! The console's words in zh-CN and en, chosen by the operator's locale in the directory.

use std::collections::BTreeMap;

const EN: &[(&str, &str)] = &[
    ("inbox", "Inbox"),
    ("operations", "Operations"),
    ("sign_in", "Sign in"),
    ("sign_out", "Sign out"),
    ("operator_token", "Operator token"),
    ("role", "Role"),
    ("show", "Show"),
    ("apply", "Apply"),
    ("due", "Due"),
    ("sla", "SLA"),
    ("task", "Task"),
    ("assignee", "Assignee"),
    ("instance", "Instance"),
    ("overdue", "overdue"),
    ("escalated", "escalated"),
    ("breached", "breached"),
    ("all_open", "all open"),
    ("nothing", "Nothing here."),
    ("next_page", "Next page"),
    ("status", "Status"),
    ("current_step", "Current step"),
    ("evidence", "Evidence bundle"),
    ("chain", "audit chain"),
    ("resume", "Resume"),
    ("cancel", "Cancel"),
    ("reason", "Reason"),
    ("tasks", "Tasks"),
    ("votes", "Votes"),
    ("reassign", "Reassign"),
    ("timeline", "Timeline"),
    ("notifications", "Notifications"),
    ("template", "Template"),
    ("to", "To"),
    ("attempts", "Attempts"),
    ("postings", "Ledger postings"),
    ("failed_instances", "Failed instances"),
    ("delegations", "Delegations"),
    ("person", "Person"),
    ("delegate", "Delegate"),
    ("hours_left", "working hours left"),
    ("refused", "Refused"),
    ("done", "Done"),
    ("bad_token", "That token is not an operator's."),
    ("bad_csrf", "The form has expired; open the page again."),
];

const ZH: &[(&str, &str)] = &[
    ("inbox", "待办"),
    ("operations", "运维"),
    ("sign_in", "登录"),
    ("sign_out", "退出"),
    ("operator_token", "操作员令牌"),
    ("role", "角色"),
    ("show", "显示"),
    ("apply", "筛选"),
    ("due", "截止"),
    ("sla", "时限"),
    ("task", "待办"),
    ("assignee", "处理人"),
    ("instance", "实例"),
    ("overdue", "已超期"),
    ("escalated", "已升级"),
    ("breached", "已违约"),
    ("all_open", "全部未办"),
    ("nothing", "暂无。"),
    ("next_page", "下一页"),
    ("status", "状态"),
    ("current_step", "当前步骤"),
    ("evidence", "证据包"),
    ("chain", "审计链"),
    ("resume", "恢复"),
    ("cancel", "取消"),
    ("reason", "原因"),
    ("tasks", "待办"),
    ("votes", "投票"),
    ("reassign", "改派"),
    ("timeline", "时间线"),
    ("notifications", "通知"),
    ("template", "模板"),
    ("to", "收件人"),
    ("attempts", "尝试次数"),
    ("postings", "账务记录"),
    ("failed_instances", "失败的实例"),
    ("delegations", "委托"),
    ("person", "本人"),
    ("delegate", "代理人"),
    ("hours_left", "剩余工作小时"),
    ("refused", "未执行"),
    ("done", "已完成"),
    ("bad_token", "该令牌不属于任何操作员。"),
    ("bad_csrf", "表单已失效，请重新打开页面。"),
];

/// The words for `locale` (`en…` → English, anything else Chinese).
pub(crate) fn words(locale: &str) -> (&'static str, BTreeMap<&'static str, &'static str>) {
    if locale.to_ascii_lowercase().starts_with("en") {
        ("en", EN.iter().copied().collect())
    } else {
        ("zh-CN", ZH.iter().copied().collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_languages_have_every_word() {
        let en: Vec<&str> = super::EN.iter().map(|(k, _)| *k).collect();
        let zh: Vec<&str> = super::ZH.iter().map(|(k, _)| *k).collect();
        assert_eq!(en, zh);
    }
}
