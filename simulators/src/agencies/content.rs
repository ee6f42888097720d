//! Deterministic generator of realistic Liaoyuan matters (事项), the people
//! who report them, and how each channel words them.
//!
//! Everything derives from a seed through splitmix64, so two runs with the
//! same seed produce the same bodies and a test knows what was sent. A share
//! of matters is reported through several channels (hotline + terminal,
//! terminal + court, hotline + petition): [`Matter::channels`] says which.

use chrono::{Duration, NaiveDate, NaiveDateTime};

/// splitmix64 finaliser, as in `canonical.rs`.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A tiny deterministic generator (splitmix64 stream). Not shared across
/// threads: each producer derives its own from a seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(mix(seed ^ 0x1A0_5EED))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------- identity

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// GB 11643 check character of the first 17 digits (None if not 17 digits).
pub fn id_check_char(first17: &str) -> Option<char> {
    let b = first17.as_bytes();
    if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = b.iter().zip(ID_WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    Some(ID_CHECK[(sum % 11) as usize] as char)
}

/// An 18-character resident ID number with a valid check character.
pub fn is_valid_id_number(id: &str) -> bool {
    id.len() == 18 && id.is_char_boundary(17) && id_check_char(&id[..17]) == id[17..].chars().next()
}

/// A resident ID number for someone registered in `area6`, born on `birth`.
pub fn id_number(rng: &mut Rng, area6: &str, birth: NaiveDate) -> String {
    let first = format!("{area6}{}{:03}", birth.format("%Y%m%d"), rng.below(1000));
    let check = id_check_char(&first).expect("17 digits");
    format!("{first}{check}")
}

/// A mobile number `1[358]x` + 8 digits, Jilin-looking (0437 in the middle).
pub fn mobile(rng: &mut Rng) -> String {
    let prefix = rng.pick(&["139", "138", "136", "135", "137", "150", "151", "158", "159", "186", "187", "189"]);
    format!("{prefix}0437{:04}", rng.below(10_000))
}

/// A Liaoyuan landline `0437-xxxxxxx`.
pub fn landline(rng: &mut Rng) -> String {
    format!("0437-{}{:06}", rng.range(2, 6), rng.below(1_000_000))
}

/// How a caller number arrives from the CTI (all valid per hotline.md).
pub fn dial_in_form(rng: &mut Rng, number: &str) -> String {
    if let Some(local) = number.strip_prefix("0437-") {
        if rng.chance(0.5) { number.to_string() } else { format!("0437{local}") }
    } else {
        match rng.below(4) {
            0 => format!("+86{number}"),
            1 => format!("+86 {} {} {}", &number[..3], &number[3..7], &number[7..]),
            _ => number.to_string(),
        }
    }
}

/// Whether `s` is a phone number in one of the forms the contracts allow.
pub fn is_valid_phone(s: &str) -> bool {
    let digits: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = digits.strip_prefix("+86").unwrap_or(&digits);
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let mobile = digits.len() == 11 && matches!(&digits[..2], "13" | "15" | "18");
    let landline = digits.len() == 11 && digits.starts_with("0437");
    mobile || landline
}

// ------------------------------------------------------------------ places

/// A township-level division (9 digits) and its county (6 digits).
#[derive(Clone, Copy, Debug)]
pub struct Township {
    pub code: &'static str,
    pub name: &'static str,
    pub county: &'static str,
    pub county_name: &'static str,
    /// Basic court serving the county.
    pub court: &'static str,
}

/// From contracts/data/liaoyuan-regions.csv.
pub const TOWNSHIPS: &[Township] = &[
    Township { code: "220402001", name: "东吉街道", county: "220402", county_name: "龙山区", court: "吉0402" },
    Township { code: "220402002", name: "南康街道", county: "220402", county_name: "龙山区", court: "吉0402" },
    Township { code: "220402005", name: "站前街道", county: "220402", county_name: "龙山区", court: "吉0402" },
    Township { code: "220402100", name: "寿山镇", county: "220402", county_name: "龙山区", court: "吉0402" },
    Township { code: "220403001", name: "太安街道", county: "220403", county_name: "西安区", court: "吉0403" },
    Township { code: "220403002", name: "仙城街道", county: "220403", county_name: "西安区", court: "吉0403" },
    Township { code: "220403100", name: "灯塔镇", county: "220403", county_name: "西安区", court: "吉0403" },
    Township { code: "220421100", name: "东丰镇", county: "220421", county_name: "东丰县", court: "吉0421" },
    Township { code: "220421101", name: "大阳镇", county: "220421", county_name: "东丰县", court: "吉0421" },
    Township { code: "220422100", name: "白泉镇", county: "220422", county_name: "东辽县", court: "吉0422" },
    Township { code: "220422101", name: "渭津镇", county: "220422", county_name: "东辽县", court: "吉0422" },
];

const STREETS: &[&str] = &["义宁街", "康宁路", "人民大街", "站前路", "福镇大路", "向阳街", "西宁大路", "北寿街"];
const COMMUNITIES: &[&str] = &["康宁社区", "幸福社区", "向阳社区", "新兴社区", "永安村", "民主村", "胜利村", "丰收村"];
const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "孙", "马", "钱", "高", "韩"];

// ---------------------------------------------------------------- subjects

/// What a matter is about, and how each system classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Manhole,
    Property,
    Heating,
    Noise,
    Wages,
    Leak,
    Land,
    Subsidy,
    Clutter,
    Lending,
}

pub const SUBJECTS: &[Subject] = &[
    Subject::Manhole,
    Subject::Property,
    Subject::Heating,
    Subject::Noise,
    Subject::Wages,
    Subject::Leak,
    Subject::Land,
    Subject::Subsidy,
    Subject::Clutter,
    Subject::Lending,
];

impl Subject {
    /// Hotline category `一级-二级`.
    pub fn hotline_category(self) -> &'static str {
        match self {
            Subject::Manhole => "市政设施-下水井",
            Subject::Property => "住房-物业管理",
            Subject::Heating => "城市供热-供热质量",
            Subject::Noise => "环境保护-噪声污染",
            Subject::Wages => "劳动保障-欠薪",
            Subject::Leak => "住房-房屋漏水",
            Subject::Land => "农业农村-土地承包",
            Subject::Subsidy => "农业农村-惠农补贴",
            Subject::Clutter => "住房-物业管理",
            Subject::Lending => "政法-民间借贷",
        }
    }
    /// Hotline appealType (1 咨询 … 5 建议).
    pub fn appeal_type(self) -> &'static str {
        match self {
            Subject::Manhole | Subject::Wages | Subject::Leak | Subject::Subsidy => "2",
            Subject::Property | Subject::Heating | Subject::Noise | Subject::Clutter => "3",
            Subject::Land => "2",
            Subject::Lending => "1",
        }
    }
    /// Petition content class `nrfl`.
    pub fn nrfl(self) -> &'static str {
        match self {
            Subject::Manhole => "9901",
            Subject::Property | Subject::Clutter => "0302",
            Subject::Heating => "0302",
            Subject::Noise => "0503",
            Subject::Wages => "0201",
            Subject::Leak => "0301",
            Subject::Land => "0101",
            Subject::Subsidy => "0401",
            Subject::Lending => "0601",
        }
    }
    /// The terminal's menu path.
    pub fn terminal_category(self) -> &'static str {
        match self {
            Subject::Manhole => "城市管理/市政设施",
            Subject::Property | Subject::Heating => "城市管理/物业供热",
            Subject::Clutter => "安全隐患/消防通道",
            Subject::Noise | Subject::Leak | Subject::Lending => "矛盾纠纷/邻里纠纷",
            Subject::Wages => "矛盾纠纷/劳资纠纷",
            Subject::Land | Subject::Subsidy => "矛盾纠纷/农村土地",
        }
    }
    /// Court cause of action (code, name), for matters that can become a case.
    pub fn court_cause(self) -> Option<(&'static str, &'static str)> {
        match self {
            Subject::Leak | Subject::Noise | Subject::Clutter => Some(("9062", "相邻关系纠纷")),
            Subject::Land => Some(("9011", "土地承包经营权纠纷")),
            Subject::Wages => Some(("9174", "劳务合同纠纷")),
            Subject::Lending => Some(("9222", "民间借贷纠纷")),
            Subject::Property => Some(("9141", "物业服务合同纠纷")),
            _ => None,
        }
    }
    /// Rural matters happen in villages (towns), urban ones in communities.
    fn rural(self) -> bool {
        matches!(self, Subject::Land | Subject::Subsidy)
    }
}

/// Where a matter can be reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Channels {
    pub hotline: bool,
    pub petition: bool,
    pub terminal: bool,
    pub court: bool,
}

impl Channels {
    pub fn count(self) -> usize {
        [self.hotline, self.petition, self.terminal, self.court].iter().filter(|b| **b).count()
    }
}

/// A person as the matter needs them. Personal data: never log it.
#[derive(Clone, Debug)]
pub struct Person {
    pub surname: &'static str,
    pub female: bool,
    /// Masked name as records carry it (张某某, 马某).
    pub name: String,
    pub id_no: String,
    pub mobile: String,
    pub landline: Option<String>,
    pub address: String,
}

impl Person {
    /// How a caller asks to be addressed (王女士 / 王先生).
    pub fn salutation(&self) -> String {
        format!("{}{}", self.surname, if self.female { "女士" } else { "先生" })
    }
}

/// One real-world matter.
#[derive(Clone, Debug)]
pub struct Matter {
    pub index: u64,
    pub seed: u64,
    pub subject: Subject,
    pub township: Township,
    /// 12-digit village/community code.
    pub village: String,
    pub community: &'static str,
    pub street: &'static str,
    /// Free-text place, e.g. `龙山区南康街道义宁街与康宁路交汇处`.
    pub place: String,
    pub reporter: Person,
    pub other: Person,
    /// When it happened (Beijing time).
    pub occurred: NaiveDateTime,
    pub urgent: bool,
    /// Money at stake (yuan), for wages/lending.
    pub amount: u32,
    /// How many people (petition `rs`).
    pub people: u32,
    pub channels: Channels,
}

fn person(rng: &mut Rng, area6: &str, address: String) -> Person {
    let surname = *rng.pick(SURNAMES);
    let female = rng.chance(0.5);
    let name = if rng.chance(0.5) { format!("{surname}某某") } else { format!("{surname}某") };
    let birth =
        NaiveDate::from_ymd_opt(1950 + rng.below(52) as i32, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32)
            .expect("valid date");
    let id_no = id_number(rng, area6, birth);
    let mobile = mobile(rng);
    let landline = rng.chance(0.2).then(|| landline(rng));
    Person { surname, female, name, id_no, mobile, landline, address }
}

/// `count` matters from `seed`; matter `i` is the same whatever `count` is.
pub fn matters(seed: u64, count: usize) -> Vec<Matter> {
    (0..count as u64).map(|i| Matter::new(seed, i)).collect()
}

impl Matter {
    pub fn new(seed: u64, index: u64) -> Matter {
        let s = mix(seed ^ index.wrapping_mul(0x1000_0000_01B3));
        let mut rng = Rng::new(s);
        let subject = *rng.pick(SUBJECTS);
        let township = if subject.rural() {
            *rng.pick(&TOWNSHIPS.iter().filter(|t| t.name.ends_with('镇')).copied().collect::<Vec<_>>())
        } else {
            *rng.pick(TOWNSHIPS)
        };
        let village_no = if subject.rural() { rng.range(200, 215) } else { rng.range(1, 12) };
        let village = format!("{}{village_no:03}", township.code);
        let community = if subject.rural() { *rng.pick(&COMMUNITIES[4..]) } else { *rng.pick(&COMMUNITIES[..4]) };
        let street = *rng.pick(STREETS);
        let cross = *rng.pick(STREETS);
        let building = rng.range(1, 30);
        let place = match subject {
            Subject::Manhole => {
                if cross != street {
                    format!("{}{}{street}与{cross}交汇处", township.county_name, township.name)
                } else {
                    format!("{}{}{street}{}号门前", township.county_name, township.name, rng.range(1, 300))
                }
            }
            Subject::Land | Subject::Subsidy => {
                format!("{}{}{community}{}组", township.county_name, township.name, rng.range(1, 9))
            }
            _ => format!("{}{}{community}{building}号楼", township.county_name, township.name),
        };
        let reporter_addr =
            format!("{}{}{community}{building}号楼{}单元", township.county_name, township.name, rng.range(1, 6));
        let reporter = person(&mut rng, township.county, reporter_addr.clone());
        let other = person(&mut rng, township.county, reporter_addr);
        let month = if subject == Subject::Heating { *rng.pick(&[1u32, 2, 11, 12]) } else { rng.range(1, 11) as u32 };
        let occurred = NaiveDate::from_ymd_opt(2024, month, 1 + rng.below(28) as u32)
            .expect("date")
            .and_hms_opt(rng.range(6, 21) as u32, rng.below(60) as u32, rng.below(60) as u32)
            .expect("time");
        let urgent = subject == Subject::Manhole || rng.chance(0.1);
        let amount = match subject {
            Subject::Wages => 1000 * rng.range(3, 150) as u32,
            Subject::Lending => 1000 * rng.range(5, 200) as u32,
            _ => 0,
        };
        let people = if subject == Subject::Wages && rng.chance(0.4) { rng.range(5, 12) as u32 } else { 1 };
        // Primary channel by subject, and a share reported twice.
        let mut ch = Channels::default();
        let multi = rng.chance(0.3);
        match subject {
            Subject::Manhole | Subject::Heating | Subject::Property | Subject::Clutter => {
                ch.hotline = true;
                ch.terminal = multi || rng.chance(0.2);
            }
            Subject::Noise | Subject::Leak => {
                ch.terminal = true;
                ch.court = multi;
                ch.hotline = !multi && rng.chance(0.3);
            }
            Subject::Wages | Subject::Subsidy => {
                ch.petition = true;
                ch.hotline = multi;
            }
            Subject::Land => {
                ch.petition = rng.chance(0.5);
                ch.terminal = !ch.petition || multi;
                ch.court = multi;
            }
            Subject::Lending => {
                ch.court = true;
                ch.terminal = multi;
            }
        }
        Matter {
            index,
            seed: s,
            subject,
            township,
            village,
            community,
            street,
            place,
            reporter,
            other,
            occurred,
            urgent,
            amount,
            people,
            channels: ch,
        }
    }

    fn amount_words(&self) -> String {
        let wan = self.amount / 10_000;
        let qian = (self.amount % 10_000) / 1000;
        match (wan, qian) {
            (0, q) => format!("{}千元", cn_digit(q)),
            (w, 0) => format!("{}万元", cn_number(w)),
            (w, q) => format!("{}万{}千元", cn_number(w), cn_digit(q)),
        }
    }

    /// The hotline operator's summary (诉求内容), third person.
    pub fn operator_summary(&self) -> String {
        let p = &self.place;
        match self.subject {
            Subject::Manhole => {
                format!("来电人反映{p}下水井井盖塌陷，路面出现深坑，已有车辆陷入，请尽快派人处理并设置警示。")
            }
            Subject::Property => {
                format!("来电人反映{p}物业服务差，楼道灯坏了一个多月无人维修，垃圾清运不及时，要求物业整改。")
            }
            Subject::Heating => {
                format!("来电人反映{p}入冬以来室内温度不足十五度，家中有老人，联系供热公司未解决，请求协调。")
            }
            Subject::Noise => format!("来电人反映{p}楼下商铺夜间施工噪声扰民，持续到夜里十一点以后，影响休息。"),
            Subject::Wages => {
                format!("来电人反映在某建筑工地务工，被拖欠工资{}，多次讨要无果，请求帮助追讨。", self.amount_words())
            }
            Subject::Leak => format!("来电人反映{p}楼上住户卫生间漏水，致其家中天棚受损，协商未果，请求协调处理。"),
            Subject::Land => format!("来电人反映{p}与邻户承包地边界不清发生争执，请求村委会协调确认地界。"),
            Subject::Subsidy => format!("来电人反映{p}耕地地力保护补贴至今未发放到卡，请求核实补发。"),
            Subject::Clutter => format!("来电人反映{p}楼道内长期堆放杂物，堵塞消防通道，物业不予清理。"),
            Subject::Lending => "来电人咨询借给他人的钱到期不还，如何申请诉前调解，需要准备哪些材料。".to_string(),
        }
    }

    /// A later hotline version: what the caller added (`version` ≥ 2).
    pub fn operator_followup(&self, version: i64) -> String {
        match self.subject {
            Subject::Manhole => "来电人补充：塌陷处已有积水，旁边还有一处井盖松动。".to_string(),
            Subject::Heating => "来电人补充：今日测温仍只有十三度，供热公司未上门。".to_string(),
            _ => format!("来电人第{version}次来电补充：问题仍未解决，请加快处理。"),
        }
    }

    /// The petitioner's own words (主要内容), first person.
    pub fn petition_words(&self) -> String {
        let p = &self.place;
        match self.subject {
            Subject::Manhole => format!("我家门口{p}的下水井盖塌了好几天了，晚上看不见，已经有人崴脚，请政府管一管。"),
            Subject::Property => {
                format!("我住在{p}，物业收了物业费却不干活，楼道灯不亮、垃圾没人清，找了多次没人管，请求依法处理。")
            }
            Subject::Heating => {
                format!("我家住{p}，今年冬天暖气一直不热，屋里只有十二三度，老人冻得生病，多次找供热公司未解决。")
            }
            Subject::Noise => {
                format!("我家住{p}，楼下饭店排风机和夜间施工噪声太大，我们一家人长期睡不好觉，请求督促整改。")
            }
            Subject::Wages => {
                if self.people >= 5 {
                    format!(
                        "某建筑公司拖欠我们{}名农民工工资共计{}，多次讨要无果，请求帮助追讨。",
                        cn_number(self.people),
                        self.amount_words()
                    )
                } else {
                    format!(
                        "本人在某建筑公司干活，工程完工后老板拖欠我工资{}至今不给，请求帮助追讨。",
                        self.amount_words()
                    )
                }
            }
            Subject::Leak => format!("我家住{p}，楼上卫生间漏水把我家天棚泡坏了，找他们多次不给修，请求帮助解决。"),
            Subject::Land => format!("本人在{p}的承包地被邻户多种了两垄，村里调解没有结果，请求确认地界。"),
            Subject::Subsidy => {
                "本人家中承包地二〇二三年度耕地地力保护补贴至今未发放到卡，村里说是名单报错了，请求核实并补发。"
                    .to_string()
            }
            Subject::Clutter => format!("我们{p}楼道里堆满了杂物，堵住了消防通道，物业不管，出了事谁负责。"),
            Subject::Lending => {
                format!("本人借给他人{}，约定一年归还，到期后对方一直拖着不还，请求帮助追回。", self.amount_words())
            }
        }
    }

    /// A grid worker's shorthand (事由).
    pub fn grid_shorthand(&self) -> String {
        let c = self.community;
        let who = &self.reporter.name;
        let other = &self.other.name;
        match self.subject {
            Subject::Manhole => {
                format!("巡查发现{}下水井塌陷，有车辆陷落，需市政部门尽快修复并设置路锥。", self.street)
            }
            Subject::Property => format!("{c}居民反映物业不作为，楼道灯坏、垃圾未清，已与物业沟通。"),
            Subject::Heating => format!("{c}多户反映暖气不热，入户测温14度，需供热公司处理。"),
            Subject::Noise => format!("{c}{who}反映楼下商铺夜间噪声扰民，已现场劝导，需执法部门处理。"),
            Subject::Wages => {
                format!("辖区工地{}名工人反映被欠薪约{}元，情绪激动，需劳动监察介入。", self.people, self.amount)
            }
            Subject::Leak => format!("{c}{who}反映楼上{other}家卫生间漏水，天棚受损，双方争吵，需调解。"),
            Subject::Land => format!("{c}{who}与{other}因承包地地界发生争执，现场劝解，需镇司法所调解。"),
            Subject::Subsidy => format!("{c}{who}反映地力补贴未到卡，已报镇农业站核实。"),
            Subject::Clutter => format!("巡查发现{c}楼道堆放杂物，堵塞消防通道，存在火灾隐患。"),
            Subject::Lending => format!("{c}{who}与{other}因借款{}元发生纠纷，建议申请诉前调解。", self.amount),
        }
    }

    /// The applicant's claim as a court records it (诉讼请求).
    pub fn court_claim(&self) -> String {
        match self.subject {
            Subject::Leak => "楼上住户卫生间漏水致楼下天棚受损，请求维修并赔偿".to_string(),
            Subject::Noise => "被申请人经营场所夜间噪声超标，请求停止侵害并赔偿损失".to_string(),
            Subject::Clutter => "邻居在公共楼道堆放杂物，影响通行和消防安全，请求排除妨碍".to_string(),
            Subject::Land => "承包地边界争议，请求确认地界".to_string(),
            Subject::Wages => format!("请求支付拖欠的劳务报酬人民币{}", self.amount_words()),
            Subject::Lending => format!("请求偿还借款人民币{}及利息", self.amount_words()),
            Subject::Property => "请求物业公司履行维修义务并退还部分物业费".to_string(),
            _ => "请求调解".to_string(),
        }
    }
}

fn cn_digit(d: u32) -> &'static str {
    ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"][(d % 10) as usize]
}

/// 1..=999 in Chinese numerals (enough for counts and 万 amounts).
pub fn cn_number(n: u32) -> String {
    let (h, t, u) = (n / 100 % 10, n / 10 % 10, n % 10);
    let mut s = String::new();
    if h > 0 {
        s.push_str(cn_digit(h));
        s.push('百');
    }
    if t > 0 {
        if !(h == 0 && t == 1) {
            s.push_str(cn_digit(t));
        }
        s.push('十');
    } else if h > 0 && u > 0 {
        s.push('零');
    }
    if u > 0 || n == 0 {
        s.push_str(cn_digit(u));
    }
    s
}

/// A deterministic lowercase hex string of `len` chars (fake sha256 etc.).
pub fn hex(rng: &mut Rng, len: usize) -> String {
    let mut s = String::with_capacity(len);
    while s.len() < len {
        s.push_str(&format!("{:016x}", rng.next_u64()));
    }
    s.truncate(len);
    s
}

/// `t` shifted by whole minutes.
pub fn plus_minutes(t: NaiveDateTime, m: i64) -> NaiveDateTime {
    t + Duration::minutes(m)
}

/// A hash of a message body, to count distinct bodies.
pub fn body_hash(body: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agencies_id_check_digit_matches_samples() {
        for id in ["220422196503150042", "220403198811220022", "220402197001011236", "11010519491231002X"] {
            assert!(is_valid_id_number(id), "{id}");
        }
        assert!(!is_valid_id_number("220402197001011231"));
        let mut rng = Rng::new(1);
        for _ in 0..500 {
            let d = NaiveDate::from_ymd_opt(1980, 2, 29).unwrap();
            assert!(is_valid_id_number(&id_number(&mut rng, "220402", d)));
        }
    }

    #[test]
    fn agencies_phones_and_matters_are_valid_and_deterministic() {
        let mut rng = Rng::new(7);
        for _ in 0..200 {
            let m = mobile(&mut rng);
            assert!(is_valid_phone(&m) && m.len() == 11, "{m}");
            assert!(is_valid_phone(&dial_in_form(&mut rng, &m)));
            let l = landline(&mut rng);
            assert!(l.starts_with("0437-") && l.len() == 12 && is_valid_phone(&l));
            assert!(is_valid_phone(&dial_in_form(&mut rng, &l)));
        }
        assert!(!is_valid_phone("12345"));
        let a = matters(42, 300);
        let b = matters(42, 300);
        assert_eq!(a[17].operator_summary(), b[17].operator_summary());
        assert!(a.iter().all(|m| m.village.len() == 12 && is_valid_id_number(&m.reporter.id_no)));
        assert!(a.iter().filter(|m| m.channels.count() >= 2).count() > 30, "multi-channel share");
        assert!(a.iter().all(|m| m.channels.count() >= 1));
        let subjects: std::collections::HashSet<_> = a.iter().map(|m| m.subject as u8).collect();
        assert_eq!(subjects.len(), SUBJECTS.len());
        assert_eq!(cn_number(12), "十二");
        assert_eq!(cn_number(105), "一百零五");
    }
}
