fn main() {
    print!("{}", champion::crds::all_yaml().unwrap());
}
