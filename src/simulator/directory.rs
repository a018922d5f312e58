//! The simulator's directory: the partner's customers (id, domain, company name) and each
//! customer's users (id, UPN, names, usage location), served by the collections and by GET and
//! PATCH on a user. Read from a file (`simulate --directory FILE`: JSON, or CSV in `export`'s
//! columns), built in code by tests, or, by default, made from the demo's sample file so that
//! `export` against a default simulator lists the users the demo updates.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::*;

/// The partner's customers and their users.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    pub customers: Vec<DirCustomer>,
}

/// One customer of the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirCustomer {
    pub id: Uuid,
    pub domain: String,
    #[serde(default)]
    pub company_name: String,
    #[serde(default)]
    pub users: Vec<DirUser>,
}

/// One user of the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirUser {
    pub id: Uuid,
    #[serde(default)]
    pub user_principal_name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub usage_location: String,
}

/// The columns of a CSV directory (those `export` writes; `company_name` may follow `customer_domain`).
const CSV_COLUMNS: [&str; 8] = [
    "customer_id",
    "customer_domain",
    "user_id",
    "user_principal_name",
    "display_name",
    "first_name",
    "last_name",
    "usage_location",
];

const FIRST_NAMES: [&str; 8] = [
    "Ada", "Bruno", "Chloe", "Dario", "Elif", "Femi", "Greta", "Hiro",
];
const LAST_NAMES: [&str; 8] = [
    "Nowak", "Schmidt", "Dubois", "Rossi", "Yilmaz", "Okafor", "Berg", "Tanaka",
];
const COMPANIES: [(&str, &str); 4] = [
    ("Contoso", "contoso.onmicrosoft.com"),
    ("Fabrikam", "fabrikam.onmicrosoft.com"),
    ("Northwind Traders", "northwind.onmicrosoft.com"),
    ("Tailspin Toys", "tailspin.onmicrosoft.com"),
];

impl Directory {
    /// The directory of the demo's sample file: its customers (named Contoso, Fabrikam, ...)
    /// and every user id it names, with generated names.
    pub fn demo() -> Directory {
        let sample = include_str!("../../samples/usage-location.csv");
        let mut directory = Directory::default();
        for line in sample.lines().skip(1) {
            let mut cells = line.split(',');
            let (Some(c), Some(u)) = (cells.next(), cells.next()) else {
                continue;
            };
            let (Some(c), Some(u)) = (parse_guid(c.trim()), parse_guid(u.trim())) else {
                continue;
            };
            let index = match directory.customers.iter().position(|x| x.id == c) {
                Some(i) => i,
                None => {
                    let (name, domain) = COMPANIES[directory.customers.len() % COMPANIES.len()];
                    let n = directory.customers.len() / COMPANIES.len();
                    let domain = match n {
                        0 => domain.to_string(),
                        n => domain.replacen(".onmicrosoft", &format!("{n}.onmicrosoft"), 1),
                    };
                    directory.customers.push(DirCustomer {
                        id: c,
                        domain,
                        company_name: name.into(),
                        users: Vec::new(),
                    });
                    directory.customers.len() - 1
                }
            };
            let customer = &mut directory.customers[index];
            if customer.users.iter().all(|x| x.id != u) {
                let user = generated_user(u, &customer.domain);
                customer.users.push(user);
            }
        }
        directory
    }

    /// `customers` customers with `users` users each, ids from `id(kind, n)` (kind 1 for
    /// customers, 2 for users, n counting from 1 across the whole directory).
    pub fn generated(customers: u32, users: u32, id: impl Fn(u8, u32) -> Uuid) -> Directory {
        let customers = (1..=customers)
            .map(|c| {
                let domain = format!("tenant{c}.onmicrosoft.com");
                let users = (1..=users)
                    .map(|u| generated_user(id(2, (c - 1) * users + u), &domain))
                    .collect();
                DirCustomer {
                    id: id(1, c),
                    company_name: format!("Tenant {c}"),
                    domain,
                    users,
                }
            })
            .collect();
        Directory { customers }
    }

    /// Reads a directory file: JSON (`{"customers": [{"id", "domain", "companyName", "users":
    /// [{"id", "userPrincipalName", ...}]}]}`) or CSV with `export`'s columns.
    pub fn read(path: &Path) -> Result<Directory, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the directory {}: {e}", path.display()))?;
        let bad = |e: &dyn fmt::Display| format!("directory {}: {e}", path.display());
        if text.trim_start().starts_with('{') {
            return serde_json::from_str(&text).map_err(|e| bad(&e));
        }
        let mut reader = ::csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let header = reader.headers().map_err(|e| bad(&e))?.clone();
        let position = |name: &str| header.iter().position(|h| h.trim() == name);
        let mut columns = [0; 8];
        for (slot, name) in columns.iter_mut().zip(CSV_COLUMNS) {
            *slot = position(name).ok_or_else(|| bad(&format!("no {name} column")))?;
        }
        let company = position("company_name");
        let mut directory = Directory::default();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(&e))?;
            let cell = |k: usize| record.get(columns[k]).unwrap_or_default().to_string();
            let line = i + 2;
            let customer = parse_guid(&cell(0))
                .ok_or_else(|| bad(&format!("line {line}: customer_id is not a GUID")))?;
            let entry = match directory.customers.iter().position(|c| c.id == customer) {
                Some(i) => i,
                None => {
                    directory.customers.push(DirCustomer {
                        id: customer,
                        domain: cell(1),
                        company_name: company
                            .and_then(|c| record.get(c))
                            .unwrap_or_default()
                            .into(),
                        users: Vec::new(),
                    });
                    directory.customers.len() - 1
                }
            };
            if cell(2).trim().is_empty() {
                continue;
            }
            let id = parse_guid(&cell(2))
                .ok_or_else(|| bad(&format!("line {line}: user_id is not a GUID")))?;
            directory.customers[entry].users.push(DirUser {
                id,
                user_principal_name: cell(3),
                display_name: cell(4),
                first_name: cell(5),
                last_name: cell(6),
                usage_location: cell(7),
            });
        }
        Ok(directory)
    }

    /// Every user as `export` would write it: customer id, customer domain, user id, UPN,
    /// display name, first name, last name, usage location (ids in lower-case hyphenated form).
    pub fn rows(&self) -> Vec<[String; 8]> {
        let mut rows = Vec::new();
        for c in &self.customers {
            for u in &c.users {
                rows.push([
                    c.id.to_string(),
                    c.domain.clone(),
                    u.id.to_string(),
                    u.user_principal_name.clone(),
                    u.display_name.clone(),
                    u.first_name.clone(),
                    u.last_name.clone(),
                    u.usage_location.clone(),
                ]);
            }
        }
        rows
    }
}

/// A user with names drawn from its id.
fn generated_user(id: Uuid, domain: &str) -> DirUser {
    let bytes = id.as_bytes();
    let first = FIRST_NAMES[usize::from(bytes[15]) % FIRST_NAMES.len()];
    let last = LAST_NAMES[usize::from(bytes[14]) % LAST_NAMES.len()];
    let short = first8(id);
    DirUser {
        id,
        user_principal_name: format!("{}.{}-{short}@{domain}", first, last).to_lowercase(),
        display_name: format!("{first} {last}"),
        first_name: first.into(),
        last_name: last.into(),
        usage_location: "US".into(),
    }
}

impl DirUser {
    /// The user as the API shows it.
    pub(super) fn to_json(&self, customer: Uuid) -> Map<String, Value> {
        let value = json!({
            "id": self.id.to_string(),
            "userPrincipalName": self.user_principal_name,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "displayName": self.display_name,
            "usageLocation": self.usage_location,
            "userDomainType": "none",
            "state": "active",
            "links": {"self": {"uri": format!("/customers/{customer}/users/{}", self.id), "method": "GET", "headers": []}},
            "attributes": {"objectType": "CustomerUser"},
        });
        match value {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

/// The directory with its lookups, as the handler uses it.
pub(super) struct Indexed {
    pub(super) directory: Directory,
    customers: HashMap<Uuid, usize>,
    users: HashMap<(Uuid, Uuid), (usize, usize)>,
    /// A directory given on purpose: users and customers outside it are answered 404.
    pub(super) strict: bool,
}

impl Indexed {
    pub(super) fn new(directory: Option<Directory>) -> Indexed {
        let strict = directory.is_some();
        let directory = directory.unwrap_or_else(Directory::demo);
        let mut customers = HashMap::new();
        let mut users = HashMap::new();
        for (ci, c) in directory.customers.iter().enumerate() {
            customers.entry(c.id).or_insert(ci);
            for (ui, u) in c.users.iter().enumerate() {
                users.entry((c.id, u.id)).or_insert((ci, ui));
            }
        }
        Indexed {
            directory,
            customers,
            users,
            strict,
        }
    }

    pub(super) fn customer(&self, id: Uuid) -> Option<&DirCustomer> {
        self.customers
            .get(&id)
            .map(|&i| &self.directory.customers[i])
    }

    pub(super) fn user(&self, customer: Uuid, user: Uuid) -> Option<&DirUser> {
        let &(c, u) = self.users.get(&(customer, user))?;
        Some(&self.directory.customers[c].users[u])
    }
}
